// Admin pages: staff accounts (create, admin rights, disable, new password), the settings in force, and the
// audit log. Also the page where anyone changes their own password.

import { api } from "./api.js";
import { fields, focusHeading, h, notice, replace } from "./dom.js";
import { count, dateTime, dicomDate, personName } from "./format.js";
import { nasSettingsCard } from "./nas.js";
import { orthancSettingsCard } from "./orthanc.js";
import { practiceCard } from "./practice.js";
import { tokensCard } from "./tokens.js";
import { accessReportsCard } from "./reports.js";

const ACTION_LABEL = {
  signin: "Signed in",
  signin_failed: "Sign-in failed",
  signout: "Signed out",
  search: "Searched",
  open_series: "Opened series",
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
  index_schedule: "Indexing schedule",
  purge: "Purged old entries",
  access_report: "Made access report",
  audit_export: "Exported audit log",
  backup: "Backup or restore",
  share_unlock: "Unlocked a share link",
  practice_settings: "Changed practice details",
};
const PAGE = 100;

// -- users ----------------------------------------------------------------------------------------------

export function renderUsers(container, ctx) {
  const message = h("div", { id: "users-message" });
  const tableBox = h("div", { class: "table-wrap" });
  const settingsBox = h("div");
  const name = h("input", { id: "new-user-name", maxlength: "64", required: true, autocomplete: "off", spellcheck: "false", pattern: "[A-Za-z0-9][A-Za-z0-9._@\\-]{0,63}" });
  const isAdmin = h("input", { id: "new-user-admin", type: "checkbox" });
  const form = h(
    "form",
    { class: "inline-form", id: "new-user" },
    h("label", { for: "new-user-name" }, "New account"),
    name,
    h("label", { class: "check" }, isAdmin, " admin"),
    h("button", { type: "submit", class: "primary" }, "Create with a generated password"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const user = await api("/api/users", { method: "POST", body: { name: name.value.trim(), admin: isAdmin.checked } });
      showPassword(user.name, user.password);
      name.value = "";
      isAdmin.checked = false;
      load();
    } catch (err) {
      replace(message, notice(err.message, "error"));
    }
  });

  function showPassword(user, password) {
    replace(
      message,
      h(
        "div",
        { class: "notice success", role: "status" },
        `Password for ${user}, shown this once: `,
        h("code", { class: "secret" }, password),
        ". Give it to them in person; they can change it under their name at the top right.",
      ),
    );
  }

  async function change(user, body, what) {
    try {
      const out = await api(`/api/users/${encodeURIComponent(user)}`, { method: "PATCH", body });
      if (out.password) showPassword(out.name, out.password);
      else replace(message, notice(`${user}: ${what}.`, "success"));
      load();
    } catch (err) {
      replace(message, notice(err.message, "error"));
    }
  }

  async function load() {
    let users;
    try {
      users = await api("/api/users");
    } catch (err) {
      replace(tableBox, notice(err.message, "error"));
      return;
    }
    const rows = users.map((u) =>
      h(
        "tr",
        { class: u.disabled ? "disabled" : null },
        h("td", {}, u.name, u.name === ctx.me.name ? h("span", { class: "muted" }, " (you)") : null),
        h("td", {}, u.is_admin ? "Admin" : "Staff"),
        h("td", {}, u.disabled ? "Disabled" : "Active"),
        h("td", {}, u.last_signin_at ? dateTime(u.last_signin_at, ctx.me.timezone) : "never"),
        h(
          "td",
          { class: "actions" },
          h("button", { type: "button", onclick: () => change(u.name, { admin: !u.is_admin }, u.is_admin ? "now staff" : "now admin") }, u.is_admin ? "Make staff" : "Make admin"),
          h("button", { type: "button", onclick: () => change(u.name, { disabled: !u.disabled }, u.disabled ? "enabled" : "disabled") }, u.disabled ? "Enable" : "Disable"),
          h("button", { type: "button", onclick: () => change(u.name, { generate_password: true }, "new password") }, "New password"),
        ),
      ),
    );
    replace(
      tableBox,
      h(
        "table",
        { class: "users-table" },
        h("thead", {}, h("tr", {}, ["Name", "Role", "Status", "Last sign-in", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows),
      ),
    );
  }

  async function loadSettings() {
    try {
      const s = await api("/api/settings");
      replace(
        settingsBox,
        fields([
          ["Index", s.db],
          ["Folders to index", s.roots.join("; ") || "none"],
          ["Time zone", s.timezone],
          ["Sign out after idle", `${s.session_idle_minutes} minutes`],
          ["Secure cookies (HTTPS)", s.secure_cookies ? "yes" : "no"],
          ["Lock after failed sign-ins", `${s.signin_failures_per_user} per user, ${s.signin_failures_per_address} per computer, for ${s.signin_lockout_minutes} minutes`],
        ]),
      );
    } catch (err) {
      replace(settingsBox, notice(err.message, "error"));
    }
  }

  replace(
    container,
    h("h2", {}, "Users"),
    h("section", { class: "card" }, form, message, tableBox),
    h("section", { class: "card" }, h("h3", {}, "Settings in force"), h("p", { class: "muted" }, "Set in the settings file or PACSINDEX_* environment variables on the server."), settingsBox),
  );
  container.append(orthancSettingsCard());
  container.append(tokensCard(ctx));
  container.append(nasSettingsCard());
  container.append(practiceCard());
  focusHeading(container);
  load();
  loadSettings();
}

// -- audit log ------------------------------------------------------------------------------------------

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
  const form = h(
    "form",
    { class: "inline-form" },
    h("label", { for: "audit-user" }, "User"),
    user,
    action,
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    load();
  });
  replace(
    container,
    h("h2", {}, "Audit log"),
    h("p", { class: "muted" }, "Who signed in, searched, opened a series, or started or stopped indexing. Newest first."),
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
    const table = h(
      "table",
      { class: "audit-table" },
      h("thead", {}, h("tr", {}, ["Time", "User", "Computer", "Action", "Details"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        entries.map((e) =>
          h(
            "tr",
            {},
            h("td", { class: "nowrap" }, dateTime(e.at, ctx.me.timezone)),
            h("td", {}, e.user || "–"),
            h("td", {}, e.client || "–"),
            h("td", {}, ACTION_LABEL[e.action] || e.action),
            h("td", {}, describe(e)),
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

function describe(e) {
  const d = e.detail || {};
  switch (e.action) {
    case "search": {
      const parts = [d.q ? `“${d.q}”` : "everything"];
      if (d.modality) parts.push(d.modality);
      if (d.date_from || d.date_to) parts.push(`${d.date_from || "…"} to ${d.date_to || "…"}`);
      for (const k of ["medical_aid", "hospital", "hospital_group"]) if (d[k]) parts.push(d[k]);
      if (d.offset) parts.push(`from result ${d.offset + 1}`);
      return parts.join(", ");
    }
    case "open_series":
      return `${personName(d.PatientName)} (${d.PatientID || "no ID"}), ${d.Modality || "?"} ${dicomDate(d.StudyDate)}`;
    case "index_start":
      return (d.roots || []).join("; ");
    case "signin_failed":
      return d.reason || "";
    default:
      return Object.entries(d)
        .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join("; ") : v}`)
        .join(", ");
  }
}

// -- your own account -----------------------------------------------------------------------------------

export function renderAccount(container, ctx, signedOut) {
  const current = h("input", { id: "pw-current", type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { id: "pw-new", type: "password", autocomplete: "new-password", required: true, minlength: "10" });
  const again = h("input", { id: "pw-again", type: "password", autocomplete: "new-password", required: true, minlength: "10" });
  const message = h("div");
  const form = h(
    "form",
    { class: "card stacked" },
    h("h3", {}, "Change your password"),
    // for password managers: which account this password belongs to
    h("input", { type: "text", autocomplete: "username", value: ctx.me.name, readonly: true, hidden: true }),
    h("label", { for: "pw-current" }, "Current password"),
    current,
    h("label", { for: "pw-new" }, "New password (at least 10 characters)"),
    next,
    h("label", { for: "pw-again" }, "New password again"),
    again,
    message,
    h("button", { type: "submit", class: "primary" }, "Change password"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (next.value !== again.value) {
      replace(message, notice("The two new passwords differ.", "error"));
      return;
    }
    try {
      await api("/api/me/password", { method: "POST", body: { current_password: current.value, new_password: next.value } });
      signedOut("Password changed. Sign in with the new one.");
    } catch (err) {
      replace(message, notice(err.message, "error"));
    }
  });
  replace(container, h("h2", {}, `Your account: ${ctx.me.name}`), h("p", { class: "muted" }, ctx.me.is_admin ? "Admin" : "Staff"), form);
  focusHeading(container);
}
