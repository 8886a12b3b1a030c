// The audit log, written in words: "thandi shared CT CHEST of MÜLLER, Hans with “for Dr Naidoo”, valid
// until 2026-12-08 14:00". Each sentence is built here from the stored entry and what the server looked up
// about the series, study or share link it names (`about`); the raw fields are behind "Technical details".

import { api } from "./api.js";
import { focusHeading, h, notice, replace } from "./dom.js";
import { count, dateTime, dicomDate, personName, studyLabel } from "./format.js";
import { accessReportsCard } from "./reports.js";

const ACTION_LABEL = {
  signin: "Signed in",
  signin_failed: "Sign-in failed",
  signout: "Signed out",
  search: "Searched",
  open_series: "Opened series",
  open_study: "Opened study",
  index_start: "Started indexing",
  index_stop: "Stopped indexing",
  user_add: "Created account",
  user_update: "Changed account",
  share_create: "Made share link",
  share_revoke: "Revoked share link",
  share_access: "Share link used",
  token_create: "Made API token",
  token_revoke: "Revoked API token",
  dicomweb_query: "DICOMweb search",
  dicomweb_retrieve: "DICOMweb retrieval",
  nas_settings: "Changed NAS settings",
  nas_test: "Tested NAS connection",
  orthanc_settings: "Changed Orthanc settings",
  orthanc_test: "Tested Orthanc connection",
  orthanc_send: "Sent series to Orthanc",
  view_series: "Viewed images",
  index_schedule: "Indexing schedule",
  purge: "Purged old entries",
  access_report: "Made access report",
  audit_export: "Exported audit log",
  backup: "Backup or restore",
  share_unlock: "Unlocked a share link",
  practice_settings: "Changed practice details",
};
const PAGE = 100;


export function renderAudit(container, ctx) {
  let offset = 0;
  const user = h("input", { id: "audit-user", maxlength: "64", placeholder: "any user", autocomplete: "off" });
  const action = h(
    "select",
    { id: "audit-action", "aria-label": "Action" },
    h("option", { value: "" }, "Any action"),
    Object.entries(ACTION_LABEL).map(([value, label]) => h("option", { value }, label)),
  );
  const box = h("div");
  const form = h("form", { class: "inline-form" }, h("label", { for: "audit-user" }, "User"), user, action, h("button", { type: "submit", class: "primary" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    load();
  });
  replace(
    container,
    h("h2", {}, "Audit log"),
    h("p", { class: "muted" }, "Who signed in, searched, opened or shared a patient's images, or changed a setting. Newest first."),
    h("section", { class: "card" }, form, box),
    accessReportsCard(ctx),
  );
  focusHeading(container);
  load();

  async function load() {
    let entries;
    try {
      entries = await api("/api/audit", { params: { user: user.value.trim(), action: action.value, limit: PAGE, offset } });
    } catch (err) {
      replace(box, notice(err.message, "error"));
      return;
    }
    const tz = ctx.me.timezone;
    const table = h(
      "table",
      { class: "audit-table" },
      h("thead", {}, h("tr", {}, ["Time", "What happened", "Computer"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        entries.map((e) =>
          h(
            "tr",
            {},
            h("td", { class: "nowrap" }, dateTime(e.at, tz)),
            h("td", { class: "audit-sentence" }, sentence(e, tz)),
            h("td", {}, e.client || "–"),
          ),
        ),
      ),
    );
    const pager = h(
      "div",
      { class: "pager" },
      h("button", { type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "← Newer"),
      h("span", {}, entries.length ? `${count(offset + 1)}–${count(offset + entries.length)}` : "none"),
      h("button", { type: "button", disabled: entries.length < PAGE, onclick: () => { offset += PAGE; load(); } }, "Older →"),
    );
    replace(box, entries.length ? h("div", { class: "table-wrap" }, table) : notice("No entries."), pager);
  }
}

// "CT CHEST of MÜLLER, Hans (2024-05-01)": the series or study an entry names, as the index has it now
// (or as the entry stored it, when it has gone from the index).
function subject(e) {
  const d = e.detail || {};
  const about = (e.about && (e.about.series || e.about.study)) || {};
  const pick = (k) => about[k] ?? d[k];
  const described = pick("StudyDescription") || pick("SeriesDescription") || "";
  const what = described || pick("Modality") ? studyLabel(String(pick("Modality") || "").split(/[\s,]+/), described) : "a series";
  const whose = pick("PatientName") ? ` of ${personName(pick("PatientName"))}` : "";
  const when = pick("StudyDate") ? ` (${dicomDate(pick("StudyDate"))})` : "";
  return `${what}${whose}${when}`;
}

export function sentence(e, tz) {
  const d = e.detail || {};
  const who = e.user || "Someone";
  switch (e.action) {
    case "signin":
      return `${who} signed in.`;
    case "signin_failed":
      return `Sign-in as ${e.user || "?"} refused${d.reason ? ` (${d.reason})` : ""}.`;
    case "signout":
      return `${who} signed out.`;
    case "search": {
      const parts = [];
      if (d.modality) parts.push(d.modality);
      if (d.date_from || d.date_to) parts.push(`from ${d.date_from || "the first study"} to ${d.date_to || "today"}`);
      for (const k of ["medical_aid", "hospital", "hospital_group"]) if (d[k]) parts.push(d[k]);
      const narrowed = parts.length ? ` (${parts.join(", ")})` : "";
      const page = d.offset ? `, from result ${count(d.offset + 1)}` : "";
      return d.q ? `${who} searched for “${d.q}”${narrowed}${page}.` : `${who} listed the newest studies${narrowed}${page}.`;
    }
    case "open_series":
      return `${who} opened ${subject(e)}.`;
    case "open_study":
      return `${who} opened the study ${subject(e)}.`;
    case "share_create": {
      const until = e.about?.share?.expires_at ? `, valid until ${dateTime(e.about.share.expires_at, tz)}` : "";
      const note = d.note ? ` with “${d.note}”` : " as a link";
      return `${who} shared ${subject(e)}${note}${until}.`;
    }
    case "share_revoke":
      return `${who} withdrew share link ${d.share_id ?? ""}${d.SeriesKey ? ` for ${subject(e)}` : ""}.`;
    case "share_access":
      return `Share link ${d.share_id ?? "?"} was used (${d.kind || "opened"}): ${d.outcome === "ok" ? "allowed" : `refused, ${String(d.outcome || "").replaceAll("_", " ")}`}.`;
    case "index_start":
      return `${who} started indexing ${(d.roots || []).join("; ") || "the configured folders"}.`;
    case "index_stop":
      return `${who} stopped indexing.`;
    case "user_add":
      return `${who} created the ${d.admin ? "admin" : "staff"} account ${d.name}.`;
    case "user_update": {
      const changes = [];
      if (d.admin === true) changes.push("made it an admin");
      if (d.admin === false) changes.push("made it staff");
      if (d.disabled === true) changes.push("disabled it");
      if (d.disabled === false) changes.push("enabled it");
      if (d.password) changes.push(d.password === "generated" ? "gave it a new password" : `password ${d.password}`);
      return `${who} changed the account ${d.name}: ${changes.join(", ") || "no change"}.`;
    }
    case "token_create":
      return `${who} made the API token ${d.name || ""}.`;
    case "token_revoke":
      return `${who} revoked the API token ${d.name || ""}.`;
    case "orthanc_send":
      return `${who} ${d.state === "started" ? "started sending" : `finished sending (${d.state})`} ${subject(e)} to Orthanc.`;
    case "nas_settings":
    case "orthanc_settings":
      return `${who} changed the ${e.action === "nas_settings" ? "NAS" : "Orthanc"} settings.`;
    case "nas_test":
    case "orthanc_test":
      return `${who} tested the ${e.action === "nas_test" ? "NAS" : "Orthanc"} connection${d.outcome ? `: ${d.outcome === "ok" ? "it worked" : d.outcome}` : ""}.`;
    default: {
      const rest = Object.entries(d)
        .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join("; ") : v}`)
        .join(", ");
      return `${who}: ${ACTION_LABEL[e.action] || e.action}${rest ? ` (${rest})` : ""}.`;
    }
  }
}
