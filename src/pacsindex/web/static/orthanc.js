// Orthanc, the practice's PACS: the "Send to Orthanc" card in the series view (progress while it runs, then
// what was sent, what Orthanc already had and which files failed, with why), and the admin's Orthanc
// settings (address, user, write-only password, Test connection) on the Settings page.

import { api } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { count } from "./format.js";

const POLL_MS = 500;

// -- the series view --------------------------------------------------------------------------------------

// Adds the card above the series' fields once it is known that an admin has set Orthanc up.
export async function mountOrthancCard(view, key) {
  let configured = false;
  try {
    configured = (await api("/api/orthanc", { background: true })).configured;
  } catch {
    return; // the series view already shows what is wrong with the server
  }
  const grid = view.querySelector(".detail-grid");
  if (!configured || !grid || view.querySelector("#orthanc-panel")) return;
  grid.before(orthancCard(key));
}

function orthancCard(key) {
  const result = h("div", { id: "orthanc-result", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "primary", id: "orthanc-send" }, "Send to Orthanc");
  const card = h(
    "section",
    { class: "card", id: "orthanc-panel" },
    h("h3", {}, "Send to Orthanc (PACS)"),
    h("p", { class: "muted" }, "Uploads this series' files to the practice's Orthanc. Instances Orthanc already has are skipped."),
    button,
    result,
  );
  button.addEventListener("click", async () => {
    button.disabled = true;
    replace(result, h("p", { class: "muted" }, "Starting…"));
    try {
      const send = await api("/api/orthanc/sends", { method: "POST", body: { SeriesKey: key } });
      await follow(send, result, card);
    } catch (err) {
      replace(result, notice(err.message, "error"));
    } finally {
      button.disabled = false;
    }
  });
  return card;
}

async function follow(send, result, card) {
  for (;;) {
    showSend(result, send);
    if (send.state !== "running" || !card.isConnected) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    send = await api(`/api/orthanc/sends/${encodeURIComponent(send.id)}`, { background: true });
  }
}

function showSend(box, s) {
  const counts = `${count(s.sent)} sent · ${count(s.skipped)} already in Orthanc · ${count(s.failed)} failed`;
  const bar = h("progress", { id: "orthanc-bar", max: String(Math.max(s.total, 1)), value: String(s.done) });
  if (s.state === "running") {
    const cancel = h("button", { type: "button", id: "orthanc-cancel" }, "Cancel");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        showSend(box, await api(`/api/orthanc/sends/${encodeURIComponent(s.id)}/cancel`, { method: "POST" }));
      } catch (err) {
        box.append(notice(err.message, "error"));
      }
    });
    replace(box, bar, h("p", { id: "orthanc-progress" }, `Sending: ${count(s.done)} of ${count(s.total)} files · ${counts}`), cancel);
    return;
  }
  if (s.state === "cancelled" || s.state === "interrupted") {
    const why = s.state === "cancelled"
      ? "Cancelled: what was sent stays in Orthanc."
      : "Stopped because the server stopped; it carries on when the server starts again.";
    replace(box, bar, h("p", { id: "orthanc-summary", class: "notice", role: "status" }, `${why} ${count(s.done)} of ${count(s.total)} files · ${counts}`));
    return;
  }
  if (s.state === "failed") {
    replace(box, notice(`Send stopped: ${s.error}`, "error"), h("p", { id: "orthanc-progress" }, `${count(s.done)} of ${count(s.total)} files · ${counts}`));
    return;
  }
  const kind = s.failed ? "error" : "success";
  const summary = s.failed
    ? `Done, but ${count(s.failed)} of ${count(s.total)} files did not reach Orthanc: ${counts}.`
    : `Done: all ${count(s.total)} files are in Orthanc (${counts}).`;
  const failures = s.failures.length
    ? h(
        "ul",
        { id: "orthanc-failures", class: "failures" },
        s.failures.map((f) => h("li", {}, h("span", { class: "path" }, f.path), ` — ${f.reason}`)),
      )
    : null;
  replace(box, bar, h("p", { id: "orthanc-summary", class: `notice ${kind}`, role: "status" }, summary), failures);
}

// -- admin: the connection --------------------------------------------------------------------------------

export function orthancSettingsCard() {
  const message = h("div", { id: "orthanc-message", "aria-live": "polite" });
  // Disabled until the saved values arrive, so they never overwrite what the admin has started typing.
  const url = h("input", { id: "orthanc-url", disabled: true, type: "url", maxlength: "2048", placeholder: "http://pacs-server:8042", autocomplete: "off", spellcheck: "false", size: "34" });
  const user = h("input", { id: "orthanc-user", disabled: true, maxlength: "256", autocomplete: "off", spellcheck: "false", size: "16" });
  const password = h("input", { id: "orthanc-password", disabled: true, type: "password", maxlength: "1024", autocomplete: "new-password", size: "16" });
  const save = h("button", { type: "submit", class: "primary", id: "orthanc-save" }, "Save");
  const test = h("button", { type: "button", id: "orthanc-test" }, "Test connection");
  const form = h(
    "form",
    { class: "inline-form", id: "orthanc-form" },
    h("label", { for: "orthanc-url" }, "Address"),
    url,
    h("label", { for: "orthanc-user" }, "User"),
    user,
    h("label", { for: "orthanc-password" }, "Password"),
    password,
    save,
    test,
  );

  function show(s) {
    url.value = s.url;
    user.value = s.user;
    password.value = "";
    password.placeholder = s.password_set ? "saved (type to change)" : "none";
    for (const input of [url, user, password]) input.disabled = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = { url: url.value.trim(), user: user.value.trim() };
      if (password.value) body.password = password.value;
      show(await api("/api/settings/orthanc", { method: "PUT", body }));
      replace(message, notice("Orthanc settings saved.", "success"));
    } catch (err) {
      replace(message, notice(err.message, "error"));
    }
  });

  test.addEventListener("click", async () => {
    test.disabled = true;
    replace(message, h("p", { class: "muted" }, "Asking Orthanc…"));
    try {
      const body = { url: url.value.trim() || null, user: user.value.trim() };
      if (password.value) body.password = password.value;
      const info = await api("/api/settings/orthanc/test", { method: "POST", body });
      replace(message, notice(`Connected: Orthanc ${info.version} "${info.name}" (AE title ${info.dicom_aet || "?"}) at ${info.url}.`, "success"));
    } catch (err) {
      replace(message, notice(err.message, "error"));
    } finally {
      test.disabled = false;
    }
  });

  api("/api/settings/orthanc").then(show, (err) => replace(message, notice(err.message, "error")));
  return h(
    "section",
    { class: "card", id: "orthanc-settings" },
    h("h3", {}, "Orthanc (PACS)"),
    h("p", { class: "muted" }, "Where “Send to Orthanc” in a series uploads to: Orthanc's web address and a user from its RegisteredUsers. The password is never shown again."),
    form,
    message,
  );
}
