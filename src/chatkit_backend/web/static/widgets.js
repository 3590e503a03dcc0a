// Renders ChatKit widget JSON (ListView, Row, Col, Text, Badge, Button, ...) as DOM.
// Every string goes through textContent; props only ever pick from fixed class names.

import { renderMarkdown } from "./markdown.js";

const COLORS = new Set([
  "primary", "secondary", "tertiary", "success", "danger", "warning", "info", "discovery", "caution",
]);
const ICONS = {
  check: "✓",
  "check-circle": "✓",
  "check-circle-filled": "✓",
  reload: "↻",
  plus: "+",
  delete: "✕",
  trash: "✕",
  star: "★",
  "star-filled": "★",
  calendar: "◷",
  clock: "◷",
  info: "ⓘ",
  "circle-question": "?",
  flag: "⚑",
};

function el(tag, ...classes) {
  const node = document.createElement(tag);
  for (const c of classes) if (c) node.classList.add(c);
  return node;
}

function colorClass(color) {
  return typeof color === "string" && COLORS.has(color) ? `c-${color}` : null;
}

function sizeClass(prefix, value, allowed) {
  return typeof value === "string" && allowed.includes(value) ? `${prefix}-${value}` : null;
}

function spacing(node, gap) {
  if (typeof gap === "number" && gap >= 0) node.classList.add(`gap-${Math.min(8, Math.round(gap))}`);
}

function align(node, props) {
  const a = sizeClass("align", props.align, ["start", "center", "end", "stretch", "baseline"]);
  const j = sizeClass("justify", props.justify, ["start", "center", "end", "between", "around", "evenly", "stretch"]);
  if (a) node.classList.add(a);
  if (j) node.classList.add(j);
}

function icon(name) {
  const glyph = ICONS[name];
  if (!glyph) return null;
  const span = el("span", "w-icon");
  span.setAttribute("aria-hidden", "true");
  span.textContent = glyph;
  return span;
}

function children(node, list, ctx) {
  for (const child of Array.isArray(list) ? list : []) {
    const rendered = render(child, ctx);
    if (rendered) node.append(rendered);
  }
  return node;
}

function text(component, tag, base) {
  const node = el(tag, base, colorClass(component.color));
  const size = sizeClass("size", component.size, ["xs", "sm", "md", "lg", "xl", "2xl", "3xl"]);
  const weight = sizeClass("weight", component.weight, ["normal", "medium", "semibold", "bold"]);
  if (size) node.classList.add(size);
  if (weight) node.classList.add(weight);
  if (component.lineThrough) node.classList.add("strike");
  if (component.italic) node.classList.add("italic");
  if (component.truncate) node.classList.add("truncate");
  node.textContent = String(component.value ?? "");
  return node;
}

function button(component, ctx) {
  const b = el(
    "button",
    "w-button",
    sizeClass("variant", component.variant, ["solid", "soft", "outline", "ghost"]) || "variant-solid",
    colorClass(component.color),
    sizeClass("bsize", component.size, ["3xs", "2xs", "xs", "sm", "md", "lg", "xl", "2xl", "3xl"]),
  );
  b.type = "button";
  const start = icon(component.iconStart);
  if (start) b.append(start);
  if (component.label) {
    const label = el("span");
    label.textContent = String(component.label);
    b.append(label);
  }
  const end = icon(component.iconEnd);
  if (end) b.append(end);
  if (component.disabled) b.disabled = true;
  const action = component.onClickAction;
  if (action && typeof action.type === "string") {
    b.dataset.action = action.type;
    b.addEventListener("click", () => ctx.onAction(action, b));
  } else {
    b.disabled = true;
  }
  return b;
}

function render(component, ctx) {
  if (!component || typeof component !== "object") return null;
  switch (component.type) {
    case "Card":
    case "Box":
    case "Form": {
      const node = el("div", component.type === "Card" ? "w-card" : "w-box");
      if (component.direction === "row") node.classList.add("w-row");
      else node.classList.add("w-col");
      spacing(node, component.gap);
      align(node, component);
      return children(node, component.children, ctx);
    }
    case "ListView": {
      const node = el("div", "w-listview");
      if (component.status && component.status.text) {
        const status = el("div", "w-status");
        const glyph = icon(component.status.icon);
        if (glyph) status.append(glyph);
        const label = el("span");
        label.textContent = String(component.status.text);
        status.append(label);
        node.append(status);
      }
      return children(node, component.children, ctx);
    }
    case "ListViewItem": {
      const node = el("div", "w-item");
      if (typeof component.key === "string") node.dataset.key = component.key;
      spacing(node, component.gap);
      return children(node, component.children, ctx);
    }
    case "Row":
    case "Col": {
      const node = el("div", component.type === "Row" ? "w-row" : "w-col");
      if (component.flex) node.classList.add("w-flex");
      if (component.wrap) node.classList.add("w-wrap");
      spacing(node, component.gap);
      align(node, component);
      return children(node, component.children, ctx);
    }
    case "Text":
      return text(component, "span", "w-text");
    case "Title":
      return text(component, "div", "w-title");
    case "Caption":
      return text(component, "span", "w-caption");
    case "Label":
      return text(component, "span", "w-caption");
    case "Badge": {
      const node = el(
        "span",
        "w-badge",
        colorClass(component.color) || "c-secondary",
        component.variant === "solid" ? "solid" : null,
      );
      node.textContent = String(component.label ?? "");
      return node;
    }
    case "Button":
      return button(component, ctx);
    case "Markdown": {
      const node = el("div", "w-markdown", "md");
      node.append(renderMarkdown(component.value));
      return node;
    }
    case "Divider":
      return el("hr", "w-divider");
    case "Spacer":
      return el("div", "w-spacer");
    case "Icon":
      return icon(component.name);
    default:
      // Unknown (or deliberately unsupported, such as Image: CSP allows no foreign images):
      // keep whatever text-bearing children it has.
      if (Array.isArray(component.children)) return children(el("div", "w-col"), component.children, ctx);
      return null;
  }
}

/** A DOM tree for a widget root; `onAction(action, button)` runs on a button click. */
export function renderWidget(widget, onAction) {
  const root = el("div", "widget");
  const rendered = render(widget, { onAction });
  if (rendered) root.append(rendered);
  return root;
}
