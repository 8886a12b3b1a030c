// Admin pages: staff accounts (create, admin rights, disable, new password; asking first before the ones
// that lock someone out). Also the page where anyone changes their own password.

import { api } from "./api.js";
import { confirmed, focusHeading, h, notice, replace, secretWithCopy } from "./dom.js";
import { dateTime } from "./format.js";


// -- users ----------------------------------------------------------------------------------------------

export function renderUsers(container, ctx) {
  const message = h("div", { id: "users-message" });
  const tableBox = h("div", { class: "table-wrap" });
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
        h("p", {}, `Password for ${user}, shown this once. Give it to them in person; they can change it under their name at the top right.`),
        secretWithCopy(password, { id: "new-password-value", label: `New password for ${user}` }),
      ),
    );
  }

  async function change(user, body, what, question) {
    if (question && !confirmed(question)) return;
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
          h("button", { type: "button", onclick: () => change(u.name, { generate_password: true }, "new password", `Give ${u.name} a new password? Their current one stops working and they are signed out everywhere.`) }, "New password"),
          h("button", { type: "button", onclick: () => change(u.name, { admin: !u.is_admin }, u.is_admin ? "now staff" : "now admin") }, u.is_admin ? "Make staff" : "Make admin"),
          u.disabled
            ? h("button", { type: "button", onclick: () => change(u.name, { disabled: false }, "enabled") }, "Enable")
            : h("button", { type: "button", class: "danger", onclick: () => change(u.name, { disabled: true }, "disabled", `Disable ${u.name}? They are signed out at once and cannot sign in until an admin enables the account.`) }, "Disable"),
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

  replace(
    container,
    h("h2", {}, "Users"),
    h("section", { class: "card" }, form, message, tableBox),
    h("p", { class: "muted" }, "The NAS, Orthanc, API tokens and the other settings are on the ", h("a", { href: "#/settings" }, "Settings"), " page."),
  );
  focusHeading(container);
  load();
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
