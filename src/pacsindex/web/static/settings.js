// Settings, in one place for an admin: a menu of sections (NAS, Orthanc, API tokens, practice details,
// retention, and the settings the server started with), one shown at a time at #/settings/<section>.
// A section whose API this server does not have (an older or newer version) is left out of the menu.

import { api } from "./api.js";
import { fields, focusHeading, h, notice, replace } from "./dom.js";
import { nasSettingsCard } from "./nas.js";
import { orthancSettingsCard } from "./orthanc.js";
import { practiceCard } from "./practice.js";
import { tokensCard } from "./tokens.js";

// [id, menu label, render(ctx) → element, API that must answer for the entry to show (or null)]
export const SECTIONS = [
  ["nas", "NAS", () => nasSettingsCard(), null],
  ["orthanc", "Orthanc", () => orthancSettingsCard(), null],
  ["tokens", "API tokens", (ctx) => tokensCard(ctx), null],
  ["practice", "Practice details", () => practiceCard(), "/api/settings/practice"],
  ["retention", "Retention", () => savedSection("retention", "Retention", "/api/settings/retention"), "/api/settings/retention"],
  ["server", "Server", () => serverCard(), null],
];

const present = new Map(); // probe path → whether the API answered

export async function renderSettings(container, ctx, wanted) {
  const probes = SECTIONS.filter(([, , , probe]) => probe && !present.has(probe));
  await Promise.all(
    probes.map(([, , , probe]) =>
      api(probe, { background: true }).then(
        () => present.set(probe, true),
        (err) => present.set(probe, err.status !== 404 && err.status !== 405),
      ),
    ),
  );
  const available = SECTIONS.filter(([, , , probe]) => !probe || present.get(probe));
  const section = available.find(([id]) => id === wanted) || available[0];
  const menu = h(
    "nav",
    { class: "settings-menu", "aria-label": "Settings" },
    h(
      "ul",
      {},
      available.map(([id, label]) =>
        h("li", {}, h("a", { href: `#/settings/${id}`, id: `settings-${id}`, "aria-current": id === section[0] ? "page" : null }, label)),
      ),
    ),
  );
  replace(container, h("h2", {}, "Settings"), h("div", { class: "settings-layout" }, menu, h("div", { class: "settings-body", id: "settings-body" }, section[2](ctx))));
  focusHeading(container);
}

// A section owned by another part of pacsindex, shown read-only until its own form is added here.
function savedSection(id, title, path) {
  const box = h("div", { id: `${id}-settings-body` }, h("p", { class: "muted" }, "Loading…"));
  api(path).then(
    (values) => replace(box, fields(Object.entries(values).map(([k, v]) => [k.replaceAll("_", " "), typeof v === "object" && v !== null ? JSON.stringify(v) : v]))),
    (err) => replace(box, notice(err.message, "error")),
  );
  return h("section", { class: "card", id: `${id}-settings` }, h("h3", {}, title), box);
}

function serverCard() {
  const box = h("div");
  api("/api/settings").then(
    (s) =>
      replace(
        box,
        fields([
          ["Index", s.db],
          ["Folders to index", s.roots.join("; ") || "none"],
          ["Time zone", s.timezone],
          ["Sign out after idle", `${s.session_idle_minutes} minutes`],
          ["Secure cookies (HTTPS)", s.secure_cookies ? "yes" : "no"],
          ["Lock after failed sign-ins", `${s.signin_failures_per_user} per user, ${s.signin_failures_per_address} per computer, for ${s.signin_lockout_minutes} minutes`],
        ]),
      ),
    (err) => replace(box, notice(err.message, "error")),
  );
  return h(
    "section",
    { class: "card", id: "server-settings" },
    h("h3", {}, "Server"),
    h("p", { class: "muted" }, "What the server started with, from its settings file; IT changes these there and restarts pacsindex."),
    box,
  );
}
