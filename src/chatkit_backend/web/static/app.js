// The chat page: thread list, messages, streaming, widgets, stop, retry, feedback, auth.
// All text from the model, the user or the server is set with textContent.

import * as api from "./api.js";
import { icon } from "./icons.js";
import { renderMarkdown } from "./markdown.js";
import * as voice from "./voice.js";
import { renderWidget } from "./widgets.js";

const PAGE_SIZE = 20;
const ITEMS_PAGE = 50;
const DELETE_CONFIRM_MS = 4000;
// Download links are signed for 15 minutes; one older than this is fetched afresh on click.
const LINK_FRESH_MS = 10 * 60 * 1000;

const $ = (id) => document.getElementById(id);
const ui = {
  app: $("app"),
  threads: $("threads"),
  threadsEmpty: $("threads-empty"),
  loadMore: $("load-more"),
  newThread: $("new-thread"),
  title: $("thread-title"),
  threadActions: $("thread-actions"),
  modelPicker: $("model-picker"),
  rename: $("rename"),
  renameForm: $("rename-form"),
  renameInput: $("rename-input"),
  renameCancel: $("rename-cancel"),
  del: $("delete"),
  scroller: $("scroller"),
  messages: $("messages"),
  empty: $("empty-state"),
  suggestions: $("suggestions"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  noticeRetry: $("notice-retry"),
  noticeClose: $("notice-close"),
  form: $("composer-form"),
  composer: $("composer"),
  attach: $("attach"),
  fileInput: $("file-input"),
  pendingFiles: $("pending-files"),
  send: $("send"),
  mic: $("mic"),
  micTime: $("mic-time"),
  stop: $("stop"),
  tokenPanel: $("token-panel"),
  tokenForm: $("token-form"),
  tokenInput: $("token-input"),
  tokenReason: $("token-reason"),
  forgetToken: $("forget-token"),
  openSidebar: $("open-sidebar"),
  closeSidebar: $("close-sidebar"),
  scrim: $("scrim"),
};

const state = {
  threadId: null,
  title: null,
  view: 0, // bumped on every thread switch; a stream only draws into the view it started in
  after: null,
  hasMore: false,
  items: new Map(), // item id -> item, for the thread on screen
  stream: null, // the request in flight: {controller, threadId, stopped}
  stickToBottom: true, // follow the stream unless the user scrolled up
  models: [], // GET /api/models: the picker shows when there is more than one
  files: [], // attachments in the composer: {file, id, error, node, url}
  fileLinks: new Map(), // attachment id -> {url, at}: signed download links of sent files
  recording: null, // the dictation in progress: {recording, timer, started}
};

// ---------------------------------------------------------------------------------------
// small helpers

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function parseDate(value) {
  if (!value) return null;
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/.test(value);
  const date = new Date(hasZone ? value : `${value}Z`);
  return Number.isNaN(date.getTime()) ? null : date;
}

function shortDate(value) {
  const date = parseDate(value);
  if (!date) return "";
  const now = new Date();
  if (date.toDateString() === now.toDateString()) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  const sameYear = date.getFullYear() === now.getFullYear();
  return date.toLocaleDateString([], sameYear ? { month: "short", day: "numeric" } : { dateStyle: "medium" });
}

function nearBottom() {
  const s = ui.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
}

function scrollToBottom(force) {
  if (force || state.stickToBottom) ui.scroller.scrollTop = ui.scroller.scrollHeight;
}

function updateEmptyState() {
  ui.empty.hidden = ui.messages.childElementCount > 0;
}

// ---------------------------------------------------------------------------------------
// notices and errors

function showNotice(message, { retry = null, level = "error" } = {}) {
  ui.noticeText.textContent = message;
  ui.notice.dataset.level = level;
  ui.notice.hidden = false;
  ui.noticeRetry.hidden = !retry;
  ui.noticeRetry.onclick = retry
    ? () => {
        hideNotice();
        retry();
      }
    : null;
}

function hideNotice() {
  ui.notice.hidden = true;
}

function showError(err, retry = null) {
  if (err && err.status === 401) {
    showTokenPanel(err.message);
    return;
  }
  const message = err instanceof api.ApiError ? err.message : `Something went wrong: ${err?.message || err}`;
  showNotice(message, { retry });
}

const STREAM_ERRORS = {
  "stream.error": "The assistant ran into a problem while answering.",
};

// ---------------------------------------------------------------------------------------
// auth

function showTokenPanel(reason) {
  ui.tokenReason.textContent = reason || "This server needs a bearer token.";
  ui.tokenPanel.hidden = false;
  ui.app.classList.add("needs-token");
  ui.tokenInput.value = "";
  ui.tokenInput.focus();
}

function hideTokenPanel() {
  ui.tokenPanel.hidden = true;
  ui.app.classList.remove("needs-token");
}

function updateTokenControls() {
  ui.forgetToken.hidden = !api.getToken();
}

// ---------------------------------------------------------------------------------------
// thread list

function threadEntry(thread) {
  const entry = el("button", "thread-entry");
  entry.type = "button";
  entry.dataset.threadId = thread.id;
  entry.append(el("span", "thread-entry-title", thread.title || "New chat"));
  entry.append(el("span", "thread-entry-date", shortDate(thread.created_at)));
  entry.addEventListener("click", () => {
    closeSidebar();
    if (thread.id !== state.threadId) openThread(thread.id);
  });
  if (thread.id === state.threadId) entry.classList.add("active");
  return entry;
}

function findEntry(threadId) {
  return [...ui.threads.children].find((node) => node.dataset.threadId === threadId) || null;
}

function upsertThreadEntry(thread, { prepend = false } = {}) {
  const existing = findEntry(thread.id);
  if (existing) {
    existing.querySelector(".thread-entry-title").textContent = thread.title || "New chat";
    return;
  }
  const entry = threadEntry(thread);
  if (prepend) entry.dataset.fresh = "1";
  if (prepend) ui.threads.prepend(entry);
  else ui.threads.append(entry);
  ui.threadsEmpty.hidden = true;
}

function markActiveEntry() {
  for (const node of ui.threads.children) node.classList.toggle("active", node.dataset.threadId === state.threadId);
}

async function loadThreads({ more = false } = {}) {
  const params = { limit: PAGE_SIZE, order: "desc" };
  if (more && state.after) params.after = state.after;
  let page;
  try {
    page = await api.call("threads.list", params);
  } catch (err) {
    showError(err, () => loadThreads({ more }));
    return false;
  }
  if (!more) {
    // Threads this page created while the list loaded stay on top.
    const fresh = [...ui.threads.children].filter((node) => node.dataset.fresh);
    ui.threads.replaceChildren();
    for (const thread of page.data) upsertThreadEntry(thread);
    for (const node of fresh.reverse()) if (!findEntry(node.dataset.threadId)) ui.threads.prepend(node);
  } else {
    for (const thread of page.data) upsertThreadEntry(thread);
  }
  state.hasMore = Boolean(page.has_more);
  state.after = page.after || (page.data.length ? page.data[page.data.length - 1].id : null);
  ui.loadMore.hidden = !state.hasMore;
  ui.threadsEmpty.hidden = ui.threads.childElementCount > 0;
  return true;
}

// ---------------------------------------------------------------------------------------
// thread view

function setTitle(title) {
  state.title = title;
  ui.title.textContent = title || "New chat";
  document.title = title ? `${title} · Tasks chat` : "Tasks chat";
  ui.threadActions.hidden = !state.threadId;
}

function resetView() {
  state.view += 1;
  state.items.clear();
  ui.messages.replaceChildren();
  hideNotice();
  cancelRename();
  resetDelete();
  updateEmptyState();
}

function newChat() {
  resetView();
  pickModel(null);
  state.threadId = null;
  history.replaceState(null, "", location.pathname);
  setTitle(null);
  markActiveEntry();
  closeSidebar();
  ui.composer.focus();
}

async function openThread(threadId) {
  resetView();
  const view = state.view;
  state.threadId = threadId;
  history.replaceState(null, "", `#${threadId}`);
  markActiveEntry();
  setTitle("…");
  ui.messages.setAttribute("aria-busy", "true");
  try {
    const thread = await api.call("threads.get_by_id", { thread_id: threadId });
    if (view !== state.view) return;
    setTitle(thread.title);
    for (const item of thread.items.data) upsertItem(item);
    let page = thread.items;
    while (page.has_more && page.after) {
      page = await api.call("items.list", { thread_id: threadId, limit: ITEMS_PAGE, order: "asc", after: page.after });
      if (view !== state.view) return;
      for (const item of page.data) upsertItem(item);
    }
    pickModel(lastModel());
    linkFiles();
  } catch (err) {
    if (view !== state.view) return;
    if (err.status === 404) {
      newChat();
      findEntry(threadId)?.remove();
      showNotice("That conversation no longer exists.");
      return;
    }
    showError(err, () => openThread(threadId));
  } finally {
    ui.messages.removeAttribute("aria-busy");
  }
  refreshLastMarkers();
  scrollToBottom(true);
}

// ---------------------------------------------------------------------------------------
// items

function itemText(item) {
  return (item.content || [])
    .map((part) => (part.type === "input_tag" ? `@${part.text || part.id || ""}` : part.text || ""))
    .join("");
}

function userElement(item) {
  const node = el("div", "msg user");
  node.dataset.role = "user";
  if (item.id) node.dataset.itemId = item.id;
  if (item.attachments?.length) {
    const files = el("div", "sent-files");
    for (const a of item.attachments) {
      if (a.type === "image" && a.preview_url) {
        const img = el("img", "sent-image");
        img.src = a.preview_url;
        img.alt = a.name;
        img.dataset.attachmentId = a.id;
        files.append(img);
      } else {
        files.append(fileChip(a));
      }
    }
    node.append(files);
  }
  if (itemText(item).trim() || !item.attachments?.length) node.append(el("div", "bubble", itemText(item)));
  return node;
}

// ---------------------------------------------------------------------------------------
// sent files: chips that download (signed links from GET /api/conversations/{id})

function fileChip(attachment) {
  const chip = el("a", "file-chip", attachment.name);
  chip.dataset.attachmentId = attachment.id;
  chip.download = attachment.name;
  const link = state.fileLinks.get(attachment.id);
  if (link) chip.href = link.url;
  chip.addEventListener("click", (event) => openFile(event, chip));
  return chip;
}

/** Give the thread's file chips their download links; `force`: fetch fresh ones. */
async function linkFiles({ force = false } = {}) {
  const threadId = state.threadId;
  if (!threadId || !ui.messages.querySelector(force ? "a.file-chip" : "a.file-chip:not([href])")) return;
  let conversation;
  try {
    conversation = await api.getJson(`/api/conversations/${encodeURIComponent(threadId)}`);
  } catch {
    return; // the chips stay plain names; a click tries again
  }
  const at = Date.now();
  for (const message of conversation.messages || []) {
    for (const a of message.attachments || []) if (a.url) state.fileLinks.set(a.id, { url: a.url, at });
  }
  for (const chip of ui.messages.querySelectorAll("a.file-chip")) {
    const link = state.fileLinks.get(chip.dataset.attachmentId);
    if (link) chip.href = link.url;
  }
}

async function openFile(event, chip) {
  const link = state.fileLinks.get(chip.dataset.attachmentId);
  if (link && Date.now() - link.at < LINK_FRESH_MS) return; // the browser follows the link
  event.preventDefault();
  await linkFiles({ force: true });
  const fresh = state.fileLinks.get(chip.dataset.attachmentId);
  if (fresh && Date.now() - fresh.at < LINK_FRESH_MS) chip.click();
  else showNotice(`${chip.textContent} cannot be downloaded right now.`);
}

function feedbackButton(item, kind) {
  const b = el("button", "msg-action");
  b.type = "button";
  b.dataset.feedback = kind;
  b.setAttribute("aria-pressed", "false");
  b.setAttribute("aria-label", kind === "positive" ? "Good answer" : "Bad answer");
  b.title = kind === "positive" ? "Good answer" : "Bad answer";
  b.append(icon(kind === "positive" ? "thumbs-up" : "thumbs-down", 14));
  b.addEventListener("click", () => sendFeedback(item.id, kind, b));
  return b;
}

function assistantElement(item) {
  const node = el("div", "msg assistant");
  node.dataset.role = "assistant";
  node.dataset.itemId = item.id;
  const body = el("div", "md");
  body.append(renderMarkdown(itemText(item)));
  node.append(body);
  const actions = el("div", "msg-actions");
  actions.append(feedbackButton(item, "positive"), feedbackButton(item, "negative"));
  const retry = el("button", "msg-action retry");
  retry.append(icon("retry", 14), el("span", null, "Retry"));
  retry.type = "button";
  retry.dataset.testid = "retry";
  retry.title = "Answer again";
  retry.addEventListener("click", () => retryAfter(node));
  actions.append(retry);
  node.append(actions);
  return node;
}

function activityElement(item) {
  const node = el("div", "msg activity");
  node.dataset.role = "activity";
  node.dataset.itemId = item.id;
  const tasks = item.type === "task" ? [item.task] : item.workflow?.tasks || [];
  for (const task of tasks) {
    const line = el("div", "activity-task");
    const loading = task.status_indicator === "loading";
    line.classList.add(loading ? "loading" : "done");
    const mark = el("span", "activity-mark");
    mark.setAttribute("aria-hidden", "true");
    if (!loading) mark.append(icon("check", 10));
    line.append(mark, el("span", "activity-title", task.title || task.content || "Working…"));
    node.append(line);
  }
  return node;
}

function widgetElement(item) {
  const node = el("div", "msg widget");
  node.dataset.role = "widget";
  node.dataset.itemId = item.id;
  node.append(renderWidget(item.widget, (action, button) => runAction(item.id, action, button)));
  return node;
}

function elementFor(item) {
  switch (item.type) {
    case "user_message":
      return userElement(item);
    case "assistant_message":
      return assistantElement(item);
    case "workflow":
    case "task":
      return activityElement(item);
    case "widget":
      return widgetElement(item);
    default:
      return null; // hidden context, end of turn, client tool calls: nothing to show
  }
}

function findItemElement(itemId) {
  return [...ui.messages.children].find((node) => node.dataset.itemId === itemId) || null;
}

function upsertItem(item) {
  state.items.set(item.id, item);
  const node = elementFor(item);
  const existing = findItemElement(item.id);
  if (!node) {
    existing?.remove();
    return;
  }
  if (existing) {
    for (const cls of ["streaming", "stopped", "last"]) if (existing.classList.contains(cls)) node.classList.add(cls);
    const pressed = existing.querySelector('[aria-pressed="true"]');
    if (pressed) node.querySelector(`[data-feedback="${pressed.dataset.feedback}"]`)?.setAttribute("aria-pressed", "true");
    existing.replaceWith(node);
  } else {
    ui.messages.append(node);
  }
  updateEmptyState();
}

function removeItem(itemId) {
  state.items.delete(itemId);
  findItemElement(itemId)?.remove();
  updateEmptyState();
}

// Streaming text is re-rendered at most once per frame.
const pendingRenders = new Set();
function scheduleRender(itemId) {
  if (pendingRenders.has(itemId)) return;
  pendingRenders.add(itemId);
  requestAnimationFrame(() => {
    pendingRenders.delete(itemId);
    const item = state.items.get(itemId);
    if (item) upsertItem(item);
    scrollToBottom();
  });
}

function applyUpdate(itemId, update) {
  const item = state.items.get(itemId);
  if (!item) return;
  switch (update.type) {
    case "assistant_message.content_part.added":
    case "assistant_message.content_part.done":
      item.content = item.content || [];
      item.content[update.content_index] = update.content;
      break;
    case "assistant_message.content_part.text_delta": {
      item.content = item.content || [];
      const part = item.content[update.content_index] || { type: "output_text", text: "", annotations: [] };
      part.text = (part.text || "") + update.delta;
      item.content[update.content_index] = part;
      break;
    }
    case "workflow.task.added":
      item.workflow.tasks.push(update.task);
      break;
    case "workflow.task.updated":
      item.workflow.tasks[update.task_index] = update.task;
      break;
    case "widget.root.updated":
      item.widget = update.widget;
      break;
    default:
      return; // annotations, streaming widget text: the final item carries them
  }
  scheduleRender(itemId);
}

function refreshLastMarkers() {
  const assistants = ui.messages.querySelectorAll('[data-role="assistant"]');
  assistants.forEach((node, index) => node.classList.toggle("last", index === assistants.length - 1));
}

// ---------------------------------------------------------------------------------------
// streaming

function setStreaming(on) {
  ui.stop.hidden = !on;
  ui.send.hidden = on;
  ui.app.classList.toggle("is-streaming", on);
  updateSendEnabled();
}

function updateSendEnabled() {
  const uploading = state.files.some((f) => !f.id && !f.error);
  const ready = state.files.some((f) => f.id);
  ui.send.disabled = Boolean(state.stream) || uploading || (!ui.composer.value.trim() && !ready);
}

// ---------------------------------------------------------------------------------------
// attachments in the composer: uploaded at once (direct upload), sent with the message

function renderPendingFiles() {
  ui.pendingFiles.replaceChildren(...state.files.map((f) => f.node));
  ui.pendingFiles.hidden = state.files.length === 0;
  updateSendEnabled();
}

function forgetFile(entry, { deleteUpload = true } = {}) {
  state.files = state.files.filter((f) => f !== entry);
  if (entry.url) URL.revokeObjectURL(entry.url);
  if (deleteUpload && entry.id) api.call("attachments.delete", { attachment_id: entry.id }).catch(() => {});
  renderPendingFiles();
}

async function addFiles(files) {
  for (const file of files) {
    const entry = { file, id: null, error: null, url: null, node: el("div", "pending-file uploading") };
    if (file.type.startsWith("image/")) {
      entry.url = URL.createObjectURL(file);
      const thumb = el("img", "thumb");
      thumb.src = entry.url;
      thumb.alt = "";
      entry.node.append(thumb);
    }
    entry.node.append(el("span", "name", file.name));
    const status = el("span", "status", "uploading…");
    entry.node.append(status);
    const remove = el("button", "remove", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove ${file.name}`);
    remove.addEventListener("click", () => forgetFile(entry));
    entry.node.append(remove);
    state.files.push(entry);
    renderPendingFiles();
    const progress = (share) => {
      if (!entry.id && !entry.error) status.textContent = `uploading… ${Math.round(share * 100)}%`;
    };
    api.uploadAttachment(file, progress).then(
      (attachment) => {
        entry.id = attachment.id;
        entry.node.classList.remove("uploading");
        status.textContent = "";
        if (!state.files.includes(entry)) forgetFile(entry); // removed while uploading
        updateSendEnabled();
      },
      (err) => {
        entry.error = err.message;
        entry.node.classList.replace("uploading", "failed");
        status.textContent = err.message;
        updateSendEnabled();
      },
    );
  }
}

function handleEvent(event, ctx) {
  const visible = ctx.view === state.view;
  switch (event.type) {
    case "thread.created":
      ctx.threadId = event.thread.id;
      if (state.stream) state.stream.threadId = ctx.threadId;
      upsertThreadEntry(event.thread, { prepend: true });
      if (visible) {
        state.threadId = ctx.threadId;
        history.replaceState(null, "", `#${ctx.threadId}`);
        setTitle(event.thread.title);
        markActiveEntry();
      }
      return;
    case "thread.updated":
      upsertThreadEntry(event.thread, { prepend: true });
      if (visible && event.thread.id === state.threadId) setTitle(event.thread.title);
      return;
    default:
      break;
  }
  if (!visible) return;
  switch (event.type) {
    case "thread.item.added":
    case "thread.item.done":
    case "thread.item.replaced": {
      const item = event.item;
      if (item.type === "user_message" && ctx.pending) {
        ctx.pending.remove();
        ctx.pending = null;
      }
      if (item.type === "assistant_message") ctx.assistantId = item.id;
      upsertItem(item);
      const node = findItemElement(item.id);
      if (node && item.type === "assistant_message") node.classList.toggle("streaming", event.type === "thread.item.added");
      clearProgress();
      break;
    }
    case "thread.item.updated":
      applyUpdate(event.item_id, event.update);
      return;
    case "thread.item.removed":
      removeItem(event.item_id);
      break;
    case "error":
      showNotice(event.message || STREAM_ERRORS[event.code] || "The assistant could not answer.", {
        retry: event.allow_retry ? () => retryLast() : null,
      });
      break;
    case "notice":
      showNotice(event.title ? `${event.title}: ${event.message}` : event.message, {
        level: event.level === "danger" ? "error" : "info",
      });
      break;
    case "progress_update":
      showProgress(event.text);
      break;
    default:
      return; // stream_options, client_effect: nothing to draw
  }
  refreshLastMarkers();
  scrollToBottom();
}

let progressNode = null;
function showProgress(text) {
  if (!progressNode) progressNode = el("div", "progress");
  progressNode.textContent = text || "Working…";
  ui.messages.after(progressNode);
}
function clearProgress() {
  progressNode?.remove();
}

/** Runs one streaming request; resolves when it is over, whatever happened. */
async function runStream(type, params, { pending = null, restoreText = null, follow = true } = {}) {
  const ctx = { view: state.view, threadId: state.threadId, pending, assistantId: null };
  const controller = new AbortController();
  state.stream = { controller, threadId: state.threadId, stopped: false };
  const stream = state.stream;
  // A message or a retry is the newest thing in the thread: follow it. A click in an older
  // widget keeps the user where they are (its new items, if any, land below).
  state.stickToBottom = follow || nearBottom();
  setStreaming(true);
  hideNotice();
  try {
    await api.stream(type, params, (event) => handleEvent(event, ctx), controller.signal);
  } catch (err) {
    if (err.name !== "AbortError" && ctx.view === state.view) {
      if (ctx.pending) {
        // Refused before it started (401, 409, 429, ...): give the text back to the composer.
        ctx.pending.remove();
        ctx.pending = null;
        if (restoreText && !ui.composer.value) {
          ui.composer.value = restoreText;
          autosize();
        }
        showError(err);
      } else {
        showError(err, () => retryLast());
      }
    }
  } finally {
    state.stream = null;
    setStreaming(false);
    clearProgress();
    if (ctx.view === state.view) {
      for (const node of ui.messages.querySelectorAll(".msg.streaming")) {
        node.classList.remove("streaming");
        if (stream.stopped) node.classList.add("stopped");
      }
      if (stream.stopped && !ctx.assistantId && ctx.pending) ctx.pending.classList.add("stopped");
      updateEmptyState();
      refreshLastMarkers();
      linkFiles();
    }
    if (stream.stopped && !ctx.threadId) loadThreads(); // stopped before the thread was announced
  }
}

async function sendMessage(text) {
  const ready = state.files.filter((f) => f.id);
  if (state.stream || state.files.some((f) => !f.id && !f.error) || (!text.trim() && !ready.length)) return;
  ui.composer.value = "";
  for (const f of state.files) forgetFile(f, { deleteUpload: false });
  autosize();
  updateSendEnabled();
  const shown = ready.map((f) => ({ id: f.id, name: f.file.name, type: "file" }));
  const pending = userElement({ content: [{ type: "input_text", text }], attachments: shown });
  pending.classList.add("pending");
  ui.messages.append(pending);
  updateEmptyState();
  scrollToBottom(true);
  const input = api.userInput(
    text,
    ui.modelPicker.hidden ? null : ui.modelPicker.value,
    ready.map((f) => f.id),
  );
  if (state.threadId) {
    await runStream("threads.add_user_message", { thread_id: state.threadId, input }, { pending, restoreText: text });
  } else {
    await runStream("threads.create", { input }, { pending, restoreText: text });
  }
}

async function stop() {
  const stream = state.stream;
  if (!stream) return;
  stream.stopped = true;
  stream.controller.abort();
  if (stream.threadId) {
    try {
      await api.stopRun(stream.threadId); // ends the run wherever it runs
    } catch {
      // The aborted request already stopped this server's run; nothing more to say.
    }
  }
}

function retryAfter(assistantNode) {
  let node = assistantNode.previousElementSibling;
  while (node && node.dataset.role !== "user") node = node.previousElementSibling;
  if (!node || !node.dataset.itemId || state.stream || !state.threadId) return;
  let next = node.nextElementSibling;
  while (next) {
    const after = next.nextElementSibling;
    if (next.dataset.itemId) state.items.delete(next.dataset.itemId);
    next.remove();
    next = after;
  }
  runStream("threads.retry_after_item", { thread_id: state.threadId, item_id: node.dataset.itemId });
}

function retryLast() {
  const users = ui.messages.querySelectorAll('[data-role="user"][data-item-id]');
  const last = users[users.length - 1];
  if (!last) return;
  // Retrying from a stand-in node placed right after the last user message.
  const marker = el("div");
  last.after(marker);
  retryAfter(marker);
}

async function runAction(itemId, action, button) {
  if (action.handler === "client" || !state.threadId) return;
  if (state.stream) {
    showNotice("Wait for the answer to finish, or stop it first.", { level: "info" });
    return;
  }
  const widget = findItemElement(itemId);
  widget?.classList.add("busy");
  for (const b of widget?.querySelectorAll("button") || []) b.disabled = true;
  button.classList.add("pressed");
  await runStream(
    "threads.custom_action",
    { thread_id: state.threadId, item_id: itemId, action: { type: action.type, payload: action.payload ?? {} } },
    { follow: false },
  );
  // A replaced widget is a fresh element; the old one is re-enabled if nothing replaced it.
  const current = findItemElement(itemId);
  if (current === widget && widget) {
    widget.classList.remove("busy");
    for (const b of widget.querySelectorAll("button[data-action]")) b.disabled = false;
  }
}

async function sendFeedback(itemId, kind, button) {
  if (!state.threadId) return;
  try {
    await api.call("items.feedback", { thread_id: state.threadId, item_ids: [itemId], kind });
  } catch (err) {
    showError(err);
    return;
  }
  const group = button.parentElement;
  for (const b of group.querySelectorAll("[data-feedback]")) b.setAttribute("aria-pressed", String(b === button));
}

// ---------------------------------------------------------------------------------------
// rename and delete

function startRename() {
  if (!state.threadId) return;
  ui.renameInput.value = state.title || "";
  ui.title.hidden = true;
  ui.threadActions.hidden = true;
  ui.renameForm.hidden = false;
  ui.renameInput.focus();
  ui.renameInput.select();
}

function cancelRename() {
  const wasOpen = !ui.renameForm.hidden;
  ui.renameForm.hidden = true;
  ui.title.hidden = false;
  ui.threadActions.hidden = !state.threadId;
  // Rename and Delete reappear where the rename form's buttons were, under a pointer that has
  // not moved: the browser counts that as hovering, so they stay unlit until it moves.
  if (wasOpen) ui.threadActions.classList.add("no-hover");
}

async function saveRename(event) {
  event.preventDefault();
  const title = ui.renameInput.value.trim();
  const threadId = state.threadId;
  if (!title || !threadId) return cancelRename();
  try {
    const thread = await api.call("threads.update", { thread_id: threadId, title });
    upsertThreadEntry(thread);
    if (state.threadId === threadId) setTitle(thread.title);
  } catch (err) {
    showError(err);
  }
  cancelRename();
}

// Two clicks: the first one asks. The question is about one thread in one view: the second
// click counts only there, and only for a few seconds, so a "Delete?" left on one thread can
// never delete another.
let pendingDelete = null; // {threadId, view, timer}
async function deleteThread() {
  const threadId = state.threadId;
  if (!threadId) return;
  if (pendingDelete?.threadId !== threadId || pendingDelete.view !== state.view) {
    resetDelete();
    ui.del.classList.add("confirm");
    ui.del.textContent = "Delete?";
    pendingDelete = { threadId, view: state.view, timer: setTimeout(resetDelete, DELETE_CONFIRM_MS) };
    return;
  }
  resetDelete();
  try {
    await api.call("threads.delete", { thread_id: threadId });
  } catch (err) {
    showError(err);
    return;
  }
  findEntry(threadId)?.remove();
  ui.threadsEmpty.hidden = ui.threads.childElementCount > 0;
  if (state.threadId === threadId) newChat();
}

function resetDelete() {
  if (pendingDelete) clearTimeout(pendingDelete.timer);
  pendingDelete = null;
  ui.del.classList.remove("confirm");
  ui.del.textContent = "Delete";
}

// ---------------------------------------------------------------------------------------
// layout and wiring

function openSidebar() {
  ui.app.classList.add("sidebar-open");
  ui.scrim.hidden = false;
}

function closeSidebar() {
  ui.app.classList.remove("sidebar-open");
  ui.scrim.hidden = true;
}

function autosize() {
  ui.composer.style.height = "auto";
  ui.composer.style.height = `${Math.min(ui.composer.scrollHeight, 220)}px`;
}

// The thread named in the address when the page opened; opened once the list loads.
let threadToOpen = (() => {
  const id = decodeURIComponent(location.hash.slice(1));
  return /^[\w-]{1,128}$/.test(id) ? id : null;
})();

// ---------------------------------------------------------------------------------------
// model picker

/** Fill the picker from GET /api/models; it shows only when there is a choice to make. */
async function loadModels() {
  try {
    state.models = await api.getJson("/api/models");
  } catch {
    state.models = []; // an older server, or none configured: no picker, the server decides
  }
  ui.modelPicker.replaceChildren(
    ...state.models.map((model) => {
      const option = el("option", null, model.label);
      option.value = model.id;
      return option;
    }),
  );
  ui.modelPicker.hidden = state.models.length < 2;
  pickModel(state.threadId ? lastModel() : null);
}

/** Select `modelId` if offered, else the default. */
function pickModel(modelId) {
  const offered = state.models.find((model) => model.id === modelId);
  const fallback = state.models.find((model) => model.default) || state.models[0];
  const chosen = offered || fallback;
  if (chosen) ui.modelPicker.value = chosen.id;
}

/** The model of the thread's newest user message (the server records it there). */
function lastModel() {
  let model = null;
  for (const item of state.items.values()) {
    if (item.type === "user_message" && item.inference_options?.model) model = item.inference_options.model;
  }
  return model;
}

// ---------------------------------------------------------------------------------------
// dictation: the microphone records, input.transcribe turns it into text in the composer

/** GET /api/features: the microphone shows only when the server transcribes. */
async function loadFeatures() {
  let features = {};
  try {
    features = await api.getJson("/api/features");
  } catch {
    // An older server, or a failure: no microphone.
  }
  ui.mic.hidden = !(features.transcription && voice.supported());
  document.body.dataset.features = "loaded";
}

function setMic(mode) {
  ui.mic.classList.toggle("recording", mode === "recording");
  ui.mic.classList.toggle("busy", mode === "busy");
  ui.mic.disabled = mode === "busy";
  ui.mic.setAttribute("aria-pressed", String(mode === "recording"));
  const label = { recording: "Stop and transcribe", busy: "Transcribing…" }[mode] || "Dictate";
  ui.mic.setAttribute("aria-label", label);
  ui.mic.title = label;
  ui.micTime.hidden = mode !== "recording";
}

function showElapsed() {
  const seconds = Math.floor((Date.now() - state.recording.started) / 1000);
  ui.micTime.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

async function toggleDictation() {
  if (ui.mic.disabled) return;
  if (!state.recording) {
    const recording = new voice.Recording();
    try {
      await recording.start();
    } catch (err) {
      recording.release();
      showNotice(voice.startError(err));
      return;
    }
    hideNotice();
    state.recording = { recording, started: Date.now(), timer: setInterval(showElapsed, 500) };
    showElapsed();
    setMic("recording");
    return;
  }
  const { recording, timer } = state.recording;
  state.recording = null;
  clearInterval(timer);
  setMic("busy");
  try {
    const audio = await recording.stop();
    if (!audio.size) throw new api.ApiError("Nothing was recorded: try again, a little longer.");
    insertTranscript(await api.transcribe(audio));
  } catch (err) {
    showNotice(dictationError(err));
  } finally {
    setMic("idle");
  }
}

function dictationError(err) {
  if (err?.status === 413) return "The recording is too long to transcribe: record a shorter one.";
  if (err?.status === 502) return "Transcription failed: try again, or type instead.";
  if (err?.status === 401) return "You need to sign in again to dictate.";
  return err instanceof api.ApiError ? err.message : `Dictation failed: ${err?.message || err}`;
}

/** The transcript goes where the cursor is, for the user to read and send. */
function insertTranscript(text) {
  const words = text.trim();
  if (!words) {
    showNotice("No words were heard in the recording.", { level: "info" });
    return;
  }
  const box = ui.composer;
  const before = box.value.slice(0, box.selectionStart);
  const after = box.value.slice(box.selectionEnd);
  const lead = before && !/\s$/.test(before) ? " " : "";
  const trail = after && !/^\s/.test(after) ? " " : "";
  box.value = before + lead + words + trail + after;
  const caret = (before + lead + words).length;
  box.focus();
  box.setSelectionRange(caret, caret);
  autosize();
  updateSendEnabled();
}

async function start() {
  const ok = await loadThreads();
  if (!ok) return;
  hideTokenPanel();
  await Promise.all([loadModels(), loadFeatures()]);
  const id = threadToOpen;
  threadToOpen = null;
  // Not when the user has already moved on (a message sent while the list loaded).
  if (id && !state.threadId && !state.stream) await openThread(id);
}

function wire() {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage(ui.composer.value);
  });
  ui.composer.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage(ui.composer.value);
    }
  });
  ui.composer.addEventListener("input", () => {
    autosize();
    updateSendEnabled();
  });
  ui.stop.addEventListener("click", stop);
  ui.attach.addEventListener("click", () => ui.fileInput.click());
  ui.mic.addEventListener("click", toggleDictation);
  ui.fileInput.addEventListener("change", () => {
    addFiles([...ui.fileInput.files]);
    ui.fileInput.value = "";
  });
  ui.composer.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });
  ui.form.addEventListener("dragover", (event) => event.preventDefault());
  ui.form.addEventListener("drop", (event) => {
    const files = [...(event.dataTransfer?.files || [])];
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });
  ui.newThread.addEventListener("click", newChat);
  ui.loadMore.addEventListener("click", () => loadThreads({ more: true }));
  ui.rename.addEventListener("click", startRename);
  ui.renameForm.addEventListener("submit", saveRename);
  ui.renameCancel.addEventListener("click", cancelRename);
  ui.renameInput.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancelRename();
  });
  ui.del.addEventListener("click", deleteThread);
  ui.threadActions.addEventListener("pointermove", () => ui.threadActions.classList.remove("no-hover"));
  ui.noticeClose.addEventListener("click", hideNotice);
  ui.openSidebar.addEventListener("click", openSidebar);
  ui.closeSidebar.addEventListener("click", closeSidebar);
  ui.scrim.addEventListener("click", closeSidebar);
  ui.scroller.addEventListener("scroll", () => {
    state.stickToBottom = nearBottom();
  });
  for (const b of ui.suggestions.querySelectorAll("button")) {
    b.addEventListener("click", () => sendMessage(b.textContent));
  }
  ui.tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = ui.tokenInput.value.trim().replace(/^Bearer\s+/i, "");
    if (!token) return;
    api.setToken(token);
    updateTokenControls();
    hideTokenPanel();
    start();
  });
  ui.forgetToken.addEventListener("click", () => {
    api.setToken("");
    updateTokenControls();
    resetView();
    state.threadId = null;
    setTitle(null);
    ui.threads.replaceChildren();
    start();
  });
}

wire();
updateTokenControls();
setTitle(null);
updateEmptyState();
start();
