// The admin's NAS settings, a section of the Settings page: host, share, path, user, a write-only password, domain
// and port; "Test connection" lists the first entries of the share (or says what is wrong) without saving;
// "Save" stores them, and the NAS becomes one of the folders indexing takes by default.

import { api } from "./api.js";
import { confirmed, h, notice, replace } from "./dom.js";
import { FOLDERS_CHANGED } from "./indexpage.js";

const FIELDS = [
  ["host", "Host", { placeholder: "nas or 192.168.1.20", maxlength: "253", required: true }],
  ["share", "Share", { placeholder: "Image Archiving", maxlength: "80", required: true }],
  ["path", "Folder in the share", { placeholder: "optional, e.g. 2019/03", maxlength: "1024" }],
  ["user", "User", { placeholder: "reader or CLINIC\\reader", maxlength: "256", required: true }],
  ["password", "Password", { type: "password", autocomplete: "new-password", maxlength: "1024" }],
  ["domain", "Domain", { placeholder: "optional, e.g. CLINIC", maxlength: "64" }],
  ["port", "Port", { type: "number", min: "1", max: "65535", value: "445", required: true }],
];

export function nasSettingsCard() {
  const inputs = {};
  const rows = FIELDS.map(([name, label, attrs]) => {
    inputs[name] = h("input", { id: `nas-${name}`, name: `nas-${name}`, autocomplete: "off", spellcheck: "false", ...attrs });
    return [h("label", { for: `nas-${name}` }, label), inputs[name]];
  });
  const clear = h("input", { id: "nas-clear-password", type: "checkbox" });
  const clearRow = h("label", { class: "check", id: "nas-clear-row", hidden: true }, clear, " remove the saved password");
  const status = h("p", { class: "muted", id: "nas-status" }, "Loading…");
  const result = h("div", { id: "nas-result", "aria-live": "polite" });
  const test = h("button", { type: "button", id: "nas-test" }, "Test connection");
  const save = h("button", { type: "submit", class: "primary", id: "nas-save" }, "Save");
  const remove = h("button", { type: "button", class: "danger", id: "nas-remove", hidden: true }, "Remove");
  const form = h(
    "form",
    { class: "stacked nas-form", id: "nas-form", autocomplete: "off" },
    h("div", { class: "nas-grid" }, rows),
    clearRow,
    h("div", { class: "actions" }, save, test, remove),
  );
  const card = h(
    "section",
    { class: "card", id: "nas-settings", "aria-labelledby": "nas-title" },
    h("h3", { id: "nas-title" }, "NAS (SMB share)"),
    h("p", { class: "muted" }, "The share pacsindex reads the archive from. Saved here, it is indexed with the other folders. The password is kept on the server, readable by it only, and never shown again."),
    status,
    form,
    result,
  );

  function show(s) {
    for (const [name] of FIELDS) if (name !== "password") inputs[name].value = s[name] ?? "";
    inputs.password.value = "";
    inputs.password.placeholder = s.password_set ? "unchanged" : "";
    clear.checked = false;
    clearRow.hidden = !s.password_set;
    remove.hidden = !s.configured;
    replace(status, s.configured ? ["Indexed as ", h("code", { id: "nas-url" }, s.url)] : "No NAS saved yet.");
  }

  function body() {
    const out = {};
    for (const [name] of FIELDS) out[name] = inputs[name].value.trim();
    out.port = Number(out.port || 445);
    out.password = inputs.password.value || null; // empty: keep the saved one
    out.clear_password = clear.checked;
    return out;
  }

  async function load() {
    try {
      show(await api("/api/settings/nas"));
    } catch (err) {
      replace(status, notice(err.message, "error"));
    }
  }

  async function busy(button, work) {
    if (!form.reportValidity()) return;
    button.disabled = true;
    replace(result, h("p", { class: "muted" }, button === test ? "Connecting…" : "Saving…"));
    try {
      await work();
    } catch (err) {
      replace(result, notice(err.message, "error"));
    } finally {
      button.disabled = false;
    }
  }

  test.addEventListener("click", () =>
    busy(test, async () => {
      const out = await api("/api/settings/nas/test", { method: "POST", body: body() });
      replace(
        result,
        notice(`Connected to ${out.url}: ${out.entries.length ? "its first entries are below" : "it is empty"}.`, "success"),
        out.entries.length ? h("ul", { class: "nas-entries", id: "nas-entries" }, out.entries.map((e) => h("li", {}, e))) : null,
      );
    }),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(save, async () => {
      const saved = await api("/api/settings/nas", { method: "PUT", body: body() });
      show(saved);
      document.dispatchEvent(new CustomEvent(FOLDERS_CHANGED)); // the Indexing page's list, at once
      replace(result, notice(`Saved. ${saved.url} is indexed with the other folders; the next run connects with these settings.`, "success"));
    });
  });
  remove.addEventListener("click", async () => {
    if (!confirmed("Remove the NAS settings and its password? The NAS is no longer indexed until it is saved again.")) return;
    try {
      show(await api("/api/settings/nas", { method: "DELETE" }));
      document.dispatchEvent(new CustomEvent(FOLDERS_CHANGED));
      replace(result, notice("The NAS settings and password are removed.", "success"));
    } catch (err) {
      replace(result, notice(err.message, "error"));
    }
  });
  load();
  return card;
}
