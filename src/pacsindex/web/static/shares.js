// The Shares page (your links, or every link for an admin: what each holds and for whom, status,
// downloads, revoke, unlock for admins, and who used each link). Making a link is sharecard.js's.

import { api } from "./api.js";
import { focusHeading, h, notice, replace } from "./dom.js";
import { bytes, count, dateTime, dicomDate, personName } from "./format.js";

const PAGE = 100;
const STATUS_LABEL = { active: "Active", expired: "Expired", revoked: "Revoked", used_up: "Used up", locked: "Locked" };
const OUTCOME_LABEL = {
  ok: "OK",
  incomplete: "Stopped early",
  expired: "Expired",
  revoked: "Revoked",
  bad_passcode: "Wrong passcode",
  passcode_required: "Asked for passcode",
  not_found: "Not found",
  limited: "Used up",
  locked: "Locked",
  busy: "Busy (try later)",
  stalled: "Stalled (place given back)",
};
const KIND_LABEL = { page: "Opened", passcode: "Passcode", files: "File list", download: "Download pressed", zip: "Zip download", file: "One file", view: "Viewed images", image: "One image" };

export { mountShareCard, shareCard } from "./sharecard.js";

// -- the Shares page --------------------------------------------------------------------------------------

export function renderShares(container, ctx) {
  let offset = 0;
  const box = h("div", { id: "shares-list" });
  replace(
    container,
    h("h2", {}, "Share links"),
    h("p", { class: "muted" }, ctx.me.is_admin ? "Every share link, newest first." : "The share links you made, newest first."),
    box,
  );
  focusHeading(container);
  load();

  async function load() {
    let items;
    try {
      items = await api("/api/shares", { params: { limit: PAGE, offset } });
    } catch (err) {
      replace(box, notice(err.message, "error"));
      return;
    }
    if (!items.length && offset === 0) {
      replace(box, notice("No share links yet. Open a series and use “Share this series”."));
      return;
    }
    const rows = items.flatMap((s) => shareRows(s, ctx, load));
    const table = h(
      "table",
      { class: "shares-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Series", "Made", "Valid until", "Protection", "Downloads", "Status", ""].map((label, i) =>
            h("th", { scope: "col", class: i === 4 ? "num" : null }, label),
          ),
        ),
      ),
      h("tbody", {}, rows),
    );
    const pager = h(
      "div",
      { class: "pager" },
      h("button", { type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "← Newer"),
      h("span", {}, `${count(offset + 1)}–${count(offset + items.length)}`),
      h("button", { type: "button", disabled: items.length < PAGE, onclick: () => { offset += PAGE; load(); } }, "Older →"),
    );
    replace(box, h("div", { class: "table-wrap" }, table), pager);
  }
}

function shareRows(s, ctx, reload) {
  const tz = ctx.me.timezone;
  const logCell = h("td", { colspan: "7" });
  const logRow = h("tr", { class: "share-log-row", hidden: true }, logCell);
  const logButton = h("button", { type: "button", "aria-expanded": "false" }, "Log");
  logButton.addEventListener("click", async () => {
    const open = logRow.hidden;
    logRow.hidden = !open;
    logButton.setAttribute("aria-expanded", String(open));
    if (open) await showLog(logCell, s.id, tz);
  });
  const actions = [logButton];
  if (s.status === "locked" && ctx.me.is_admin) {
    actions.unshift(
      h(
        "button",
        {
          type: "button",
          onclick: async (event) => {
            event.target.disabled = true;
            try {
              await api(`/api/shares/${s.id}/unlock`, { method: "POST" });
              reload();
            } catch (err) {
              event.target.disabled = false;
              window.alert(err.message);
            }
          },
        },
        "Unlock",
      ),
    );
  }
  if (s.status === "active" || s.status === "locked") {
    // the way out last, as everywhere: Save or Log first, Remove or Revoke at the end
    actions.push(
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async (event) => {
            if (!window.confirm("Revoke this link? It stops working at once.")) return;
            event.target.disabled = true;
            try {
              await api(`/api/shares/${s.id}/revoke`, { method: "POST" });
              reload();
            } catch (err) {
              event.target.disabled = false;
              window.alert(err.message);
            }
          },
        },
        "Revoke",
      ),
    );
  }
  const series = s.file_count === null
    ? h("span", { class: "muted" }, "(no longer in the index)")
    : [
        h("a", { href: `#/series/${encodeURIComponent(s.SeriesKey)}`, class: "series-link" }, personName(s.PatientName)),
        h("div", { class: "muted" }, h("span", { class: "modality" }, s.Modality || "?"), ` ${dicomDate(s.StudyDate)} · ${s.SeriesDescription || "(no description)"} · ${count(s.file_count)} files, ${bytes(s.total_size)}`),
        s.note ? h("div", { class: "share-note" }, `For ${s.note}`) : null,
        s.deidentified ? h("span", { class: "badge" }, "De-identified") : null,
      ];
  const protection = [s.has_passcode ? "Passcode" : "Link only"];
  if (s.max_downloads) protection.push(`${count(s.max_downloads)} download${s.max_downloads === 1 ? "" : "s"}`);
  const row = h(
    "tr",
    { class: `share-row status-${s.status}`, "data-share": String(s.id) },
    h("td", {}, series),
    h("td", {}, h("div", {}, s.created_by), h("div", { class: "muted nowrap" }, dateTime(s.created_at, tz))),
    h("td", { class: "nowrap" }, dateTime(s.expires_at, tz)),
    h("td", {}, protection.join(" · ")),
    h("td", { class: "num" }, count(s.downloads)),
    h("td", {}, h("span", { class: `badge share-${s.status}` }, STATUS_LABEL[s.status] || s.status)),
    h("td", { class: "actions" }, actions),
  );
  return [row, logRow];
}

async function showLog(cell, id, tz) {
  replace(cell, h("p", { class: "muted" }, "Loading…"));
  let entries;
  try {
    entries = await api(`/api/shares/${id}/log`, { params: { limit: 200 } });
  } catch (err) {
    replace(cell, notice(err.message, "error"));
    return;
  }
  if (!entries.length) {
    replace(cell, h("p", { class: "muted" }, "Nobody has used this link yet."));
    return;
  }
  replace(
    cell,
    h(
      "table",
      { class: "share-log" },
      h("thead", {}, h("tr", {}, ["When", "What", "Outcome", "From", "Sent"].map((label) => h("th", { scope: "col" }, label)))),
      h(
        "tbody",
        {},
        entries.map((e) =>
          h(
            "tr",
            { class: e.outcome === "ok" ? "" : "refused" },
            h("td", { class: "nowrap" }, dateTime(e.at, tz)),
            h("td", {}, KIND_LABEL[e.kind] || e.kind),
            h("td", {}, OUTCOME_LABEL[e.outcome] || e.outcome),
            h("td", { title: e.user_agent || "" }, e.client || "–"),
            h("td", { class: "num nowrap" }, e.bytes_sent ? bytes(e.bytes_sent) : "–"),
          ),
        ),
      ),
    ),
  );
}
