// Talks the ChatKit protocol to POST /chatkit: JSON requests, SSE streams, problem+json errors.

const TOKEN_KEY = "chatkit.token";

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An HTTP or network failure, with a message fit to show as is. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = null, retryAfter = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function headers() {
  const h = { "content-type": "application/json" };
  const token = getToken();
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

function detailText(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && typeof d === "object" ? d.msg || JSON.stringify(d) : String(d))).join("; ");
  }
  return detail == null ? "" : JSON.stringify(detail);
}

const FALLBACK = {
  400: "The server did not accept the request.",
  401: "You need to sign in.",
  404: "Not found.",
  409: "The conversation is busy.",
  413: "The message is too large.",
  429: "Too many requests: wait a moment.",
  500: "The server had a problem.",
  503: "The server is not available right now.",
};

async function errorFrom(response) {
  let title = "";
  let detail = "";
  let code = null;
  try {
    const body = await response.json();
    title = body.title || "";
    detail = detailText(body.detail);
    code = body.code || null;
  } catch {
    // Not JSON (a proxy's page, say): fall back to the status.
  }
  const retryAfter = Number(response.headers.get("retry-after")) || null;
  let message = detail || title || FALLBACK[response.status] || `HTTP ${response.status}`;
  if (retryAfter && response.status === 429) message += ` (try again in ${retryAfter} s)`;
  return new ApiError(message, { status: response.status, code, retryAfter });
}

async function post(path, body, signal) {
  let response;
  try {
    response = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body), signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("Cannot reach the server. Check your connection and try again.");
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** A GET of this server's JSON API (e.g. /api/models). */
export async function getJson(path) {
  let response;
  try {
    response = await fetch(path, { headers: headers() });
  } catch {
    throw new ApiError("Cannot reach the server. Check your connection and try again.");
  }
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/** A JSON ChatKit request (threads.list, threads.get_by_id, items.feedback, ...). */
export async function call(type, params) {
  const response = await post("/chatkit", { type, params });
  return response.json();
}

/**
 * A streaming ChatKit request: calls onEvent(event) for every SSE data frame.
 * Resolves when the stream ends; rejects with ApiError, or AbortError after abort().
 */
export async function stream(type, params, onEvent, signal) {
  const response = await post("/chatkit", { type, params }, signal);
  const contentType = response.headers.get("content-type") || "";
  if (!contentType.startsWith("text/event-stream")) {
    throw new ApiError("The server answered without a stream.");
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (err) {
      if (err.name === "AbortError" || signal?.aborted) throw new DOMException("Aborted", "AbortError");
      throw new ApiError("The connection broke while the answer was streaming.");
    }
    if (chunk.done) return;
    buffer += chunk.value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
        .join("\n");
      if (!data || data === "[DONE]") continue; // comments (": ping") carry no data
      let event;
      try {
        event = JSON.parse(data);
      } catch {
        throw new ApiError("The server sent a malformed event.");
      }
      onEvent(event);
    }
  }
}

/** Ask the server to end the thread's run (the page also aborts its own request). */
export async function stopRun(threadId) {
  await post(`/api/conversations/${encodeURIComponent(threadId)}/stop`, {});
}

/** The recording's text, from input.transcribe. */
export async function transcribe(blob) {
  const dataUrl = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new ApiError("The recording could not be read."));
    reader.readAsDataURL(blob);
  });
  const audio_base64 = String(dataUrl).slice(String(dataUrl).indexOf(",") + 1);
  const result = await call("input.transcribe", { audio_base64, mime_type: blob.type });
  return result.text || "";
}

export function userInput(text, model = null, attachments = []) {
  const options = model ? { model } : {};
  return { content: [{ type: "input_text", text }], attachments, inference_options: options };
}

/** The direct upload: one multipart POST /attachments; answers the attachment.
 * XMLHttpRequest rather than fetch: only it reports upload progress. */
export function uploadAttachment(file, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/attachments");
    const token = getToken();
    if (token) xhr.setRequestHeader("authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onerror = () => reject(new ApiError("Cannot reach the server. Check your connection and try again."));
    xhr.onload = async () => {
      const response = new Response(xhr.responseText, {
        status: xhr.status,
        headers: { "content-type": xhr.getResponseHeader("content-type") || "" },
      });
      if (!response.ok) reject(await errorFrom(response));
      else resolve(await response.json());
    };
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}
