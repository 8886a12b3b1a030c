// Building the page with DOM calls only: text from the index (patient names, paths) is always set as
// text, never parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// A definition list of [label, value] pairs; empty values show as a dash.
export function fields(pairs, cls = "fields") {
  return h(
    "dl",
    { class: cls },
    pairs.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value === null || value === undefined || value === "" ? "–" : value)]),
  );
}

export function notice(text, kind = "info") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

// The view's heading takes the focus after navigation, so keyboard and screen-reader users start there.
export function focusHeading(container) {
  const heading = container.querySelector("h2");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

// A secret shown once (a generated password, an API token): read-only text with a Copy button beside it.
export function secretWithCopy(value, { id, label }) {
  const field = h("input", { id, class: "secret", readonly: true, value, "aria-label": label, spellcheck: "false", size: String(Math.min(Math.max(value.length, 12), 48)) });
  const said = h("span", { class: "copy-said", role: "status" });
  const button = h("button", { type: "button", class: "copy", "data-copy-for": id }, "Copy");
  button.addEventListener("click", async () => {
    said.textContent = (await copyText(field)) ? "Copied." : "Select it and press Ctrl+C.";
  });
  return h("span", { class: "secret-row" }, field, button, said);
}

export async function copyText(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    return true;
  } catch {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy"); // plain http on the practice network: no Clipboard API there
    } catch {
      return false;
    }
  }
}

// Asks before something that cannot be undone from here; true when the user agrees.
export function confirmed(question) {
  return window.confirm(question);
}
