// The single page: sign-in, then the indexing panel and one view at a time (search, a series, problem
// files, users, audit log, your account), chosen by the address's #fragment. Status is polled every 2 s.

import { api, ApiError, onSignedOut, setCsrfToken } from "./api.js";
import { renderAccount, renderAudit, renderUsers } from "./admin.js";
import { createIndexPanel } from "./indexing.js";
import { renderProblems } from "./problems.js";
import { createSearchView } from "./search.js";
import { renderSeries } from "./series.js";
import { mountShareCard, renderShares } from "./shares.js";

const POLL_MS = 2000;

const $ = (id) => document.getElementById(id);
const ctx = { me: null, status: null };
let panel = null;
let searchView = null;
let pollTimer = null;
let pollRun = 0;

function showSignIn(message) {
  stopPolling();
  ctx.me = null;
  setCsrfToken(null);
  $("topbar").hidden = true;
  $("index-panel").hidden = true;
  $("view").hidden = true;
  $("view").replaceChildren();
  $("signin").hidden = false;
  const box = $("signin-message");
  box.textContent = message || "";
  box.hidden = !message;
  $("signin-password").value = "";
  $("signin-name").focus();
}

function signedIn(me) {
  ctx.me = me;
  setCsrfToken(me.csrf_token);
  $("signin").hidden = true;
  $("topbar").hidden = false;
  $("who").textContent = me.name;
  for (const link of document.querySelectorAll("[data-admin]")) link.hidden = !me.is_admin;
  $("index-panel").hidden = false;
  panel = createIndexPanel($("index-panel"), ctx);
  searchView = createSearchView(ctx);
  $("view").hidden = false;
  startPolling();
  route();
}

async function signIn(event) {
  event.preventDefault();
  const button = $("signin-submit");
  button.disabled = true;
  try {
    const me = await api("/auth/signin", {
      method: "POST",
      body: { name: $("signin-name").value.trim(), password: $("signin-password").value },
    });
    $("signin-password").value = "";
    if (!location.hash || location.hash === "#/account") location.hash = "#/search";
    signedIn(me);
  } catch (err) {
    const box = $("signin-message");
    box.textContent = err instanceof ApiError ? err.message : String(err);
    box.hidden = false;
    $("signin-password").value = "";
    $("signin-password").focus();
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try {
    await api("/auth/signout", { method: "POST" });
  } catch {
    // signed out already, or the server is away: the page forgets the session either way
  }
  showSignIn("You have signed out.");
}

// -- views ------------------------------------------------------------------------------------------------

function route() {
  if (!ctx.me) return;
  const view = $("view");
  const hash = location.hash || "#/search";
  let name = "search";
  if (hash.startsWith("#/series/")) {
    name = "series";
    const key = decodeURIComponent(hash.slice("#/series/".length));
    renderSeries(view, key).then(() => location.hash === hash && mountShareCard(view, key, ctx));
  } else if (hash === "#/shares") {
    name = "shares";
    renderShares(view, ctx);
  } else if (hash === "#/problems") {
    name = "problems";
    renderProblems(view);
  } else if (hash === "#/users" && ctx.me.is_admin) {
    name = "users";
    renderUsers(view, ctx);
  } else if (hash === "#/audit" && ctx.me.is_admin) {
    name = "audit";
    renderAudit(view, ctx);
  } else if (hash === "#/account") {
    name = "account";
    renderAccount(view, ctx, showSignIn);
  } else {
    searchView.render(view);
  }
  for (const link of document.querySelectorAll("#nav a")) {
    const current = link.dataset.view === name || (name === "series" && link.dataset.view === "search");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// -- status polling ---------------------------------------------------------------------------------------

function startPolling() {
  stopPolling();
  const run = ++pollRun;
  const tick = async () => {
    try {
      const status = await api("/api/index/status", { background: true });
      if (run !== pollRun) return;
      panel.update(status);
      searchView.refresh(status);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return; // onSignedOut has shown the sign-in
    }
    if (run === pollRun) pollTimer = setTimeout(tick, POLL_MS);
  };
  tick();
}

function stopPolling() {
  pollRun += 1;
  if (pollTimer) clearTimeout(pollTimer);
  pollTimer = null;
}

// -- start ------------------------------------------------------------------------------------------------

function keyboard(event) {
  if (event.key !== "/" || !ctx.me) return;
  const tag = (event.target.tagName || "").toLowerCase();
  if (["input", "select", "textarea"].includes(tag)) return;
  event.preventDefault();
  if (location.hash && location.hash !== "#/search") location.hash = "#/search";
  else $("q")?.focus();
}

async function boot() {
  onSignedOut((message) => showSignIn(ctx.me ? message : ""));
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", keyboard);
  try {
    signedIn(await api("/api/me"));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) showSignIn(err.message);
  }
}

boot();
