// The Indexing page: the panel (progress, start and stop, the folders Start indexes), and for an admin the
// history of runs and the problem files. The folders are asked for fresh, and again the moment the NAS
// settings are saved (nas.js sends "pacsindex:folders-changed"), so Start and this list always agree.

import { api } from "./api.js";
import { focusHeading, h, notice, replace } from "./dom.js";
import { count, dateTime } from "./format.js";
import { createIndexPanel } from "./indexing.js";
import { renderProblems } from "./problems.js";

export const FOLDERS_CHANGED = "pacsindex:folders-changed";

const RUN_LABEL = { completed: "Finished", running: "Running", cancelled: "Stopped", failed: "Failed", interrupted: "Interrupted" };

export function renderIndexing(container, ctx) {
  const panelBox = h("section", { class: "card panel", id: "index-panel", "aria-labelledby": "index-title" });
  const panel = createIndexPanel(panelBox, ctx);
  const historyBox = h("div", { class: "table-wrap", id: "index-history" });
  const problemsBox = h("div", { id: "index-problems" });
  replace(
    container,
    panelBox,
    ctx.me.is_admin ? h("section", { class: "card", "aria-labelledby": "history-title" }, h("h3", { id: "history-title" }, "Runs"), historyBox) : null,
    ctx.me.is_admin ? h("section", { class: "card", "aria-labelledby": "problems-title" }, problemsBox) : null,
  );
  focusHeading(container);
  if (ctx.status) panel.update(ctx.status);
  let lastState = ctx.status?.state;
  ctx.onStatus = (s) => {
    panel.update(s);
    if (ctx.me.is_admin && s.state !== lastState) loadHistory(historyBox, ctx);
    lastState = s.state;
  };

  async function loadFolders() {
    try {
      panel.setFolders((await api("/api/index/folders", { background: true })).folders);
    } catch {
      // the panel keeps the folders it had
    }
  }
  const changed = () => (container.contains(panelBox) ? loadFolders() : document.removeEventListener(FOLDERS_CHANGED, changed));
  document.addEventListener(FOLDERS_CHANGED, changed);
  loadFolders();
  if (ctx.me.is_admin) {
    loadHistory(historyBox, ctx);
    renderProblems(problemsBox, { embedded: true });
  }
}

async function loadHistory(box, ctx) {
  let runs;
  try {
    runs = await api("/api/index/runs", { params: { limit: 20 }, background: true });
  } catch (err) {
    replace(box, notice(err.message, err.status === 404 ? "info" : "error"));
    return;
  }
  if (!runs.length) {
    replace(box, notice("No runs yet."));
    return;
  }
  const tz = ctx.me.timezone;
  replace(
    box,
    h(
      "table",
      { class: "runs-table" },
      h("thead", {}, h("tr", {}, ["Started", "Finished", "How it ended", "Folders", "Files", "Unreadable"].map((t, i) => h("th", { scope: "col", class: i >= 4 ? "num" : null }, t)))),
      h(
        "tbody",
        {},
        runs.map((r) =>
          h(
            "tr",
            {},
            h("td", { class: "nowrap" }, dateTime(r.started_at, tz)),
            h("td", { class: "nowrap" }, r.finished_at ? dateTime(r.finished_at, tz) : "–"),
            h("td", {}, RUN_LABEL[r.status] || r.status, r.message ? h("div", { class: "muted" }, r.message) : null),
            h("td", { class: "path" }, r.roots.join("; ")),
            h("td", { class: "num" }, count(r.files_processed)),
            h("td", { class: "num" }, count(r.errors)),
          ),
        ),
      ),
    ),
  );
}
