// The indexing panel (on the Indexing page, indexpage.js): start and stop, a progress bar with percentage,
// files/s, ETA, counters, the time of the last update in the practice's time zone, and the folders Start
// indexes. `update(status)` is called with every status the server sends; `setFolders(list)` with the
// folders from GET /api/index/folders (so a NAS saved a moment ago is there).

import { api, ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { clockTime, count, dateTime, duration } from "./format.js";

const STATE_LABEL = {
  idle: "Not indexed yet",
  running: "Indexing",
  completed: "Up to date",
  cancelled: "Stopped",
  failed: "Failed",
  interrupted: "Interrupted",
};

export function createIndexPanel(container, ctx) {
  const title = h("h2", { id: "index-title" }, "Indexing");
  const badge = h("span", { class: "badge", id: "index-state" }, "…");
  const bar = h("progress", { id: "index-bar", max: "100", "aria-labelledby": "index-title" });
  const percent = h("span", { class: "percent", id: "index-percent", "aria-live": "off" }, "");
  const message = h("p", { class: "panel-message", id: "index-message", role: "status" });
  const stats = h("dl", { class: "stats", id: "index-stats" });
  const updated = h("span", { id: "index-updated" }, "–");
  const rootsText = h("span", { class: "roots", id: "index-roots" }, "");
  const rootsInput = h("input", {
    id: "index-roots-input",
    type: "text",
    placeholder: "/mnt/pacs; \\\\nas\\dicom",
  });
  const start = h("button", { type: "button", class: "primary", id: "index-start" }, "Start indexing");
  const stop = h("button", { type: "button", id: "index-stop" }, "Stop");
  const schedule = scheduleBlock(ctx);
  let wasRunning = null;

  start.addEventListener("click", async () => {
    start.disabled = true;
    const body = {};
    if (ctx.me.is_admin && rootsInput.value.trim()) {
      body.roots = rootsInput.value.split(";").map((r) => r.trim()).filter(Boolean);
    }
    try {
      const status = await api("/api/index/start", { method: "POST", body });
      message.textContent = "";
      update(status);
    } catch (err) {
      showError(err);
      start.disabled = false;
    }
  });
  stop.addEventListener("click", async () => {
    stop.disabled = true;
    try {
      update(await api("/api/index/stop", { method: "POST" }));
      message.textContent = "Stopping after the files in hand; the next run resumes from here.";
    } catch (err) {
      showError(err);
    }
  });

  function showError(err) {
    message.className = "panel-message error";
    message.textContent = err instanceof ApiError ? err.message : String(err);
  }

  // Everyone sees the folders Start indexes; an admin may index other folders instead, for one run.
  const foldersList = h("ul", { class: "folders", id: "index-folders" });
  const rootsRow = h(
    "div",
    { class: "roots-block" },
    h("div", { class: "roots-row" }, h("span", { class: "label", id: "index-folders-label" }, "Start indexes"), rootsText),
    foldersList,
    ctx.me.is_admin
      ? h("div", { class: "roots-row" }, h("label", { for: "index-roots-input" }, "Other folders, this run only (separate with ;)"), rootsInput)
      : null,
  );
  rootsInput.value = "";
  setFolders(ctx.me.roots || []);

  function setFolders(folders) {
    rootsText.textContent = folders.length ? "" : "no folders yet (an admin adds them in Settings)";
    replace(foldersList, folders.map((f) => h("li", { class: "path" }, f)));
  }

  replace(
    container,
    h("div", { class: "panel-head" }, title, badge, h("span", { class: "spacer" }), start, stop),
    h("div", { class: "bar-row" }, bar, percent),
    stats,
    h("div", { class: "panel-foot" }, rootsRow, h("span", { class: "updated" }, "Last update ", updated)),
    message,
    schedule.el,
  );

  function stat(label, value, id) {
    return h("div", { class: "stat" }, h("dt", {}, label), h("dd", { id }, value));
  }

  function update(s) {
    ctx.status = s;
    const running = Boolean(s.running);
    if (wasRunning !== null && wasRunning !== running) schedule.refresh(); // a run began or ended
    wasRunning = running;
    badge.textContent = STATE_LABEL[s.state] || s.state;
    badge.className = `badge state-${s.state}`;
    start.disabled = running;
    stop.disabled = !running;
    start.hidden = running;
    stop.hidden = !running;
    if (s.percent === null || s.percent === undefined) {
      if (running) bar.removeAttribute("value");
      else bar.value = 0;
      percent.textContent = running ? "counting files…" : "";
    } else {
      bar.value = s.percent;
      percent.textContent = `${s.percent.toLocaleString("en-ZA", { maximumFractionDigits: 1 })} %`;
    }
    let files = `${count(s.files_processed)} of ${count(s.enumerated_files)}`;
    if (!s.enumeration_done) files = running ? `${count(s.files_processed)} of ${count(s.enumerated_files)} so far` : "–";
    replace(
      stats,
      stat("Files done", files, "stat-files"),
      stat("Speed", running ? `${count(Math.round(s.files_per_s))} files/s` : "–", "stat-rate"),
      stat("Time left", running ? duration(s.eta_s) : "–", "stat-eta"),
      stat("Series", s.series_filling ? h("span", {}, count(s.series_count), h("span", { class: "stat-note muted" }, `${count(s.series_filling)} still being indexed`)) : count(s.series_count), "stat-series"),
      stat("New or changed", count(s.files_read), "stat-read"),
      stat("Unchanged", count(s.files_unchanged), "stat-unchanged"),
      stat("Removed", count(s.files_removed), "stat-removed"),
      stat("Unreadable", count(s.errors), "stat-errors"),
      stat("Not DICOM", count(s.non_dicom), "stat-nondicom"),
    );
    updated.textContent = clockTime(s.last_updated, s.timezone || ctx.me.timezone);
    if (running || !message.classList.contains("error")) {
      message.className = "panel-message";
      message.textContent = describe(s);
    }
  }

  return { update, setFolders };
}

function describe(s) {
  const by = s.started_by ? ` by ${s.started_by}` : "";
  if (s.running) return `Started${by}. Searches already see the series indexed so far.`;
  if (s.state === "idle") return "Nothing indexed yet: check the folders and press Start indexing.";
  const last = s.message ? ` ${s.message.charAt(0).toUpperCase()}${s.message.slice(1)}.` : "";
  return s.started_by ? `Last run started${by}.${last}` : last.trim();
}

// -- the schedule (issue 13): next run, interval and night pass, pause/resume for admins, warnings ---------
// A self-contained block: `scheduleBlock(ctx)` gives { el, refresh }; the Indexing panel shows it.

export function scheduleBlock(ctx) {
  const el = h("section", { class: "schedule", id: "index-schedule", "aria-labelledby": "schedule-title" });
  let shown = null;

  async function refresh() {
    try {
      render(await api("/api/index/schedule", { background: true }));
    } catch (err) {
      replace(el, h("p", { class: "panel-message error" }, err instanceof ApiError ? err.message : String(err)));
    }
  }

  async function change(body) {
    try {
      render(await api("/api/index/schedule", { method: "PUT", body }));
    } catch (err) {
      replace(el, h("p", { class: "panel-message error" }, err instanceof ApiError ? err.message : String(err)));
    }
  }

  function render(s) {
    shown = s;
    const tz = ctx.me.timezone;
    const every = s.every_minutes > 0 ? `every ${count(s.every_minutes)} minutes` : "no regular passes";
    const night = s.full_at ? `, a full pass at ${s.full_at} each night` : "";
    const next = s.paused
      ? "Paused: the index is brought up to date only when someone presses Start."
      : s.next_run
        ? `Next ${s.next_kind === "full" ? "full pass" : "pass"}: ${dateTime(s.next_run, tz)}.`
        : "No pass is scheduled.";
    const last = s.last ? `Last scheduled pass ${dateTime(s.last.at, tz)}: ${s.last.outcome}.` : "";
    const controls = [];
    if (ctx.me.is_admin) {
      const minutes = h("input", {
        id: "schedule-minutes", type: "number", min: "0", step: "1", value: String(s.every_minutes),
        "aria-label": "Minutes between passes (0: none)",
      });
      const night = h("input", { id: "schedule-night", type: "time", value: s.full_at, "aria-label": "Nightly full pass" });
      const save = h("button", { type: "button", id: "schedule-save" }, "Save schedule");
      save.addEventListener("click", () => change({ every_minutes: Number(minutes.value), full_at: night.value }));
      const toggle = h("button", { type: "button", id: "schedule-toggle" }, s.paused ? "Resume schedule" : "Pause schedule");
      toggle.addEventListener("click", () => change({ paused: !shown.paused }));
      controls.push(h("div", { class: "schedule-controls" }, minutes, night, save, toggle));
    }
    replace(
      el,
      h("h3", { id: "schedule-title" }, "Schedule"),
      h("p", { id: "schedule-text" }, `Kept up to date by itself: ${every}${night}. ${next} ${last}`),
      s.warnings.map((w) => h("p", { class: "panel-message error schedule-warning", role: "alert" }, w)),
      controls,
    );
  }

  refresh();
  return { el, refresh };
}
