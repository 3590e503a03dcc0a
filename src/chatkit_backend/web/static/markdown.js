// A small, safe Markdown renderer. It builds DOM nodes with createElement and text nodes
// only: no string of model or user text is ever parsed as HTML. Output is limited to
// paragraphs, headings (as strong lines), **bold**, *italic*, `code`, fenced code blocks,
// lists, block quotes and http(s) links.

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)\s*$/;
const BULLET = /^(\s*)([-*+])\s+(.*)$/;
const ORDERED = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

/** The URL if it is an absolute http(s) URL, otherwise null. */
export function safeUrl(href) {
  try {
    const url = new URL(href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function link(href, parent, label) {
  const a = el("a");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer nofollow";
  if (label === undefined) a.textContent = href;
  else renderInline(label, a);
  parent.append(a);
}

const ESCAPABLE = "\\`*_{}[]()#+-.!>~|";
const AUTOLINK = /https?:\/\/[^\s<>"'`]+/y;
const MD_LINK = /\[([^\]\n]+)\]\(\s*<?([^\s)>]+)>?(?:\s+"[^"]*")?\s*\)/y;

function isWordChar(ch) {
  return ch !== undefined && /[\p{L}\p{N}]/u.test(ch);
}

/** Appends the inline content of `text` to `parent`. */
export function renderInline(text, parent) {
  let buffer = "";
  const flush = () => {
    if (buffer) parent.append(document.createTextNode(buffer));
    buffer = "";
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === "\\" && ESCAPABLE.includes(text[i + 1] ?? "")) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === "\n") {
      flush();
      parent.append(el("br"));
      i += 1;
      continue;
    }
    if (ch === "`") {
      let ticks = 1;
      while (text[i + ticks] === "`") ticks += 1;
      const fence = "`".repeat(ticks);
      const end = text.indexOf(fence, i + ticks);
      if (end > i + ticks - 1 && end !== -1) {
        flush();
        const code = el("code");
        code.textContent = text.slice(i + ticks, end).replace(/^ (.+) $/, "$1");
        parent.append(code);
        i = end + ticks;
        continue;
      }
      buffer += fence;
      i += ticks;
      continue;
    }
    if ((ch === "*" || ch === "_") && text[i + 1] === ch) {
      const mark = ch + ch;
      const opens = text[i + 2] !== undefined && !/\s/.test(text[i + 2]) && (ch === "*" || !isWordChar(text[i - 1]));
      // "_" only delimits at word edges, so snake_case and __dunder__ names stay as written.
      let end = i + 2;
      for (;;) {
        end = text.indexOf(mark, end);
        if (end === -1 || (!/\s/.test(text[end - 1]) && (ch === "*" || !isWordChar(text[end + 2])))) break;
        end += 1;
      }
      if (opens && end > i + 2) {
        flush();
        const strong = el("strong");
        renderInline(text.slice(i + 2, end), strong);
        parent.append(strong);
        i = end + 2;
        continue;
      }
    }
    if (ch === "*" || ch === "_") {
      const opens = text[i + 1] !== undefined && !/\s/.test(text[i + 1]) && text[i + 1] !== ch;
      if (opens && (ch === "*" || !isWordChar(text[i - 1]))) {
        let end = i + 1;
        for (;;) {
          end = text.indexOf(ch, end);
          if (end === -1) break;
          const closes = !/\s/.test(text[end - 1]) && text[end + 1] !== ch;
          if (closes && (ch === "*" || !isWordChar(text[end + 1]))) break;
          end += text[end + 1] === ch ? 2 : 1;
        }
        if (end > i + 1) {
          flush();
          const em = el("em");
          renderInline(text.slice(i + 1, end), em);
          parent.append(em);
          i = end + 1;
          continue;
        }
      }
    }
    if (ch === "[") {
      MD_LINK.lastIndex = i;
      const m = MD_LINK.exec(text);
      if (m) {
        flush();
        const href = safeUrl(m[2]);
        if (href) link(href, parent, m[1]);
        else renderInline(m[1], parent); // an unsafe or relative target: the label as text
        i = MD_LINK.lastIndex;
        continue;
      }
    }
    if ((ch === "h" || ch === "H") && !isWordChar(text[i - 1])) {
      AUTOLINK.lastIndex = i;
      const m = AUTOLINK.exec(text);
      if (m) {
        // Trailing punctuation ends the sentence, not the URL.
        let url = m[0].replace(/[.,;:!?*_]+$/, "");
        if (url.endsWith(")") && !url.includes("(")) url = url.slice(0, -1);
        const href = safeUrl(url);
        if (href) {
          flush();
          link(href, parent);
          i += url.length;
          continue;
        }
      }
    }
    buffer += ch;
    i += 1;
  }
  flush();
}

function listMatch(line) {
  const b = BULLET.exec(line);
  if (b) return { indent: b[1].length, ordered: false, start: 1, text: b[3] };
  const o = ORDERED.exec(line);
  if (o) return { indent: o[1].length, ordered: true, start: Number(o[2]), text: o[3] };
  return null;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || QUOTE.test(line) || RULE.test(line) || listMatch(line) !== null;
}

/** Parses lines[i..] as a list (nested by indentation); returns [element, next index]. */
function renderList(lines, i) {
  const first = listMatch(lines[i]);
  const list = el(first.ordered ? "ol" : "ul");
  if (first.ordered && first.start !== 1) list.start = first.start;
  let item = null;
  let itemText = [];
  const finishItem = () => {
    if (item && itemText.length) {
      const span = el("span");
      renderInline(itemText.join("\n"), span);
      item.prepend(span);
    }
    itemText = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      // A blank line ends the list unless the next line carries on with it.
      const next = lines[i + 1];
      const m = next === undefined ? null : listMatch(next);
      if (m && m.indent >= first.indent) {
        i += 1;
        continue;
      }
      break;
    }
    const m = listMatch(line);
    if (m && m.indent < first.indent) break;
    if (m && m.indent < first.indent + 2) {
      if (m.ordered !== first.ordered) break;
      finishItem();
      item = el("li");
      list.append(item);
      itemText = [m.text];
      i += 1;
      continue;
    }
    if (m && item) {
      const [nested, next] = renderList(lines, i);
      finishItem();
      item.append(nested);
      i = next;
      continue;
    }
    if (startsBlock(line) || !item) break;
    itemText.push(line.trim()); // a continuation line of the item
    i += 1;
  }
  finishItem();
  return [list, i];
}

/** Renders `source` into a new DocumentFragment. */
export function renderMarkdown(source) {
  const root = document.createDocumentFragment();
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const body = [];
      i += 1;
      // An unclosed fence (still streaming) runs to the end.
      while (i < lines.length && !(lines[i].trim().startsWith(fence[1]) && FENCE.test(lines[i]))) {
        body.push(lines[i]);
        i += 1;
      }
      i += 1;
      const pre = el("pre");
      const code = el("code");
      if (fence[2]) code.dataset.lang = fence[2];
      code.textContent = body.join("\n");
      pre.append(code);
      root.append(pre);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const p = el("p", `md-heading md-h${heading[1].length}`);
      const strong = el("strong");
      renderInline(heading[2], strong);
      p.append(strong);
      root.append(p);
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      root.append(el("hr"));
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) {
        quoted.push(QUOTE.exec(lines[i])[1]);
        i += 1;
      }
      const blockquote = el("blockquote");
      blockquote.append(renderMarkdown(quoted.join("\n")));
      root.append(blockquote);
      continue;
    }
    if (listMatch(line)) {
      const [list, next] = renderList(lines, i);
      root.append(list);
      i = next;
      continue;
    }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() && (paragraph.length === 0 || !startsBlock(lines[i]))) {
      paragraph.push(lines[i].trim());
      i += 1;
    }
    const p = el("p");
    renderInline(paragraph.join("\n"), p);
    root.append(p);
  }
  return root;
}
