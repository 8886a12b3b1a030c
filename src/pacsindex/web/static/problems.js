// Problem files: what indexing could not read (with the reason), what is not DICOM at all, and what was read
// with a note on what was odd (an old-style date, a character set pydicom did not know).

import { api } from "./api.js";
import { focusHeading, h, notice, replace } from "./dom.js";
import { count } from "./format.js";

const PAGE = 100;
const KINDS = [
  ["error", "Unreadable"],
  ["non_dicom", "Not DICOM"],
  ["note", "Read with a note"],
];

// `embedded`: a card on the Indexing page (an h3, and the page keeps the focus), not a page of its own.
export function renderProblems(container, { embedded = false } = {}) {
  let kind = "error";
  let offset = 0;
  const box = h("div", { class: "problems" });
  const tabs = h(
    "div",
    { class: "tabs", role: "group", "aria-label": "Kind of problem" },
    KINDS.map(([value, label]) =>
      h("button", { type: "button", "data-kind": value, "aria-pressed": String(value === kind), onclick: () => choose(value) }, label),
    ),
  );
  replace(
    container,
    h(embedded ? "h3" : "h2", { id: "problems-title" }, "Problem files"),
    h("p", { class: "muted" }, "Files the last runs could not read, and files that are not DICOM images. Folders that could not be listed are here too."),
    tabs,
    box,
  );
  if (!embedded) focusHeading(container);
  load();

  function choose(value) {
    kind = value;
    offset = 0;
    for (const b of tabs.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.kind === kind));
    load();
  }

  async function load() {
    replace(box, h("p", { class: "muted" }, "Loading…"));
    let page;
    try {
      page = await api("/api/index/errors", { params: { kind, limit: PAGE, offset } });
    } catch (err) {
      replace(box, notice(err.message, err.status === 404 ? "info" : "error"));
      return;
    }
    if (page.items.length === 0) {
      const none = { error: "No unreadable files.", non_dicom: "No non-DICOM files.", note: "No files read with a note." };
      replace(box, notice(offset ? "No more files." : none[kind]));
      return;
    }
    const table = h(
      "table",
      { class: "problems-table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Path"), h("th", { scope: "col" }, "Reason"))),
      h("tbody", {}, page.items.map((p) => h("tr", {}, h("td", { class: "path" }, p.path), h("td", {}, p.reason || "–")))),
    );
    const first = offset + 1;
    const last = offset + page.items.length;
    const pager = h(
      "div",
      { class: "pager" },
      h("button", { type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "← Previous"),
      h("span", {}, `${count(first)}–${count(last)}`),
      h("button", { type: "button", disabled: !page.has_more, onclick: () => { offset += PAGE; load(); } }, "Next →"),
    );
    replace(box, h("div", { class: "table-wrap" }, table), pager);
  }
}
