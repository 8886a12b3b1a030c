// Admin card for API tokens: the way DICOMweb clients (Orthanc, OHIF, Weasis, scripts) sign in. Make one
// (its value is shown this once), see which are in force and when each was last used, revoke one.

import { api } from "./api.js";
import { confirmed, h, notice, replace, secretWithCopy } from "./dom.js";
import { dateTime } from "./format.js";

export function tokensCard(ctx) {
  const message = h("div", { id: "tokens-message" });
  const tableBox = h("div", { class: "table-wrap" });
  const name = h("input", {
    id: "new-token-name",
    maxlength: "64",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "e.g. Orthanc main",
    pattern: "[A-Za-z0-9][A-Za-z0-9 ._@\\-]{0,63}",
  });
  const form = h(
    "form",
    { class: "inline-form", id: "new-token" },
    h("label", { for: "new-token-name" }, "New token for"),
    name,
    h("button", { type: "submit", class: "primary" }, "Make token"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await api("/api/tokens", { method: "POST", body: { name: name.value.trim() } });
      name.value = "";
      replace(
        message,
        h(
          "div",
          { class: "notice success", role: "status" },
          h("p", {}, `Token for ${made.name}, shown this once. Put it in the client's settings now (Bearer token, or the password with any user name).`),
          secretWithCopy(made.token, { id: "new-token-value", label: `API token for ${made.name}` }),
        ),
      );
      load();
    } catch (err) {
      replace(message, notice(err.message, "error"));
    }
  });

  async function revoke(token) {
    if (!confirmed(`Revoke the token for ${token.name}? Clients using it are locked out at once.`)) return;
    try {
      await api(`/api/tokens/${token.id}/revoke`, { method: "POST" });
      replace(message, notice(`Token for ${token.name} revoked.`, "success"));
      load();
    } catch (err) {
      replace(message, notice(err.message, "error"));
    }
  }

  async function load() {
    let tokens;
    try {
      tokens = await api("/api/tokens");
    } catch (err) {
      replace(tableBox, notice(err.message, "error"));
      return;
    }
    if (!tokens.length) {
      replace(tableBox, notice("No API tokens yet."));
      return;
    }
    const when = (iso) => (iso ? dateTime(iso, ctx.me.timezone) : "never");
    const rows = tokens.map((t) =>
      h(
        "tr",
        { class: t.active ? null : "disabled" },
        h("td", {}, t.name),
        h("td", {}, t.created_by),
        h("td", { class: "nowrap" }, when(t.created_at)),
        h("td", { class: "nowrap" }, when(t.last_used_at)),
        h("td", {}, t.active ? "In force" : `Revoked ${when(t.revoked_at)}`),
        h("td", { class: "actions" }, t.active ? h("button", { type: "button", class: "danger", onclick: () => revoke(t) }, "Revoke") : null),
      ),
    );
    replace(
      tableBox,
      h(
        "table",
        { class: "tokens-table" },
        h("thead", {}, h("tr", {}, ["Name", "Made by", "Made", "Last used", "Status", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows),
      ),
    );
  }

  load();
  return h(
    "section",
    { class: "card", id: "tokens" },
    h("h3", {}, "API tokens (DICOMweb)"),
    h(
      "p",
      { class: "muted" },
      `PACS and viewers search and fetch images at ${location.origin}/dicom-web with a token. `,
      "Every search and retrieval is in the audit log under the token's name.",
    ),
    form,
    message,
    tableBox,
  );
}
