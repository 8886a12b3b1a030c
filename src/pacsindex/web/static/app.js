// The single page: sign-in, then one view at a time (the worklist, a study, a series, shares, indexing,
// users, the audit log, settings, your account), chosen by the address's #fragment. The indexing status
// comes from the server as events (statusfeed.js) and shows as a chip in the header.

import { api, ApiError, onSignedOut, setCsrfToken } from "./api.js";
import { renderAccount, renderUsers } from "./admin.js";
import { renderAudit } from "./audit.js";
import { renderIndexing } from "./indexpage.js";
import { renderProblems } from "./problems.js";
import { createSearchView } from "./search.js";
import { renderSeries } from "./series.js";
import { renderSettings } from "./settings.js";
import { mountShareCard, renderShares } from "./shares.js";
import { followStatus, updateChip } from "./statusfeed.js";
import { openStudyViewer, renderStudy } from "./study.js";

const $ = (id) => document.getElementById(id);
const ctx = { me: null, status: null, onStatus: null };
let searchView = null;
let feed = null;
let current = null;

function showSignIn(message) {
  feed?.stop();
  feed = null;
  ctx.me = null;
  setCsrfToken(null);
  $("topbar").hidden = true;
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
  searchView = createSearchView(ctx);
  $("view").hidden = false;
  feed?.stop();
  feed = followStatus(status);
  route();
}

// Every indexing status the server sends: the chip, the view that shows progress, new results.
function status(s) {
  ctx.status = s;
  updateChip($("index-chip"), s);
  ctx.onStatus?.(s);
  searchView?.refresh(s);
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
    box.textContent = err instanceof ApiError ? sentence(err.message) : String(err);
    box.hidden = false;
    $("signin-password").value = "";
    $("signin-password").focus();
  } finally {
    button.disabled = false;
  }
}

function sentence(text) {
  return text ? `${text.charAt(0).toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? "" : "."}` : text;
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

const VIEWS = [
  // [prefix or exact hash, nav entry it belongs to, admin only, render(view, rest)]
  ["#/study/", "search", false, (view, key) => renderStudy(view, key, ctx)],
  ["#/viewer/study/", "search", false, (view, key) => openStudyViewer(view, decodeURIComponent(key))],
  ["#/series/", "search", false, (view, key) => renderSeries(view, key, ctx.previous?.startsWith("#/study/") ? ctx.previous : null).then(() => location.hash === `#/series/${key}` && mountShareCard(view, key, ctx))],
  ["#/shares", "shares", false, (view) => renderShares(view, ctx)],
  ["#/indexing", "indexing", false, (view) => renderIndexing(view, ctx)],
  ["#/problems", "indexing", false, (view) => renderProblems(view)],
  ["#/users", "users", true, (view) => renderUsers(view, ctx)],
  ["#/audit", "audit", true, (view) => renderAudit(view, ctx)],
  ["#/settings", "settings", true, (view, section) => renderSettings(view, ctx, section.replace(/^\//, ""))],
  ["#/account", "account", false, (view) => renderAccount(view, ctx, showSignIn)],
];

function route() {
  if (!ctx.me) return;
  const view = $("view");
  const hash = location.hash || "#/search";
  if (current === "search") searchView.remember();
  ctx.previous = ctx.here;
  ctx.here = hash;
  ctx.onStatus = null;
  let name = "search";
  const found = VIEWS.find(([prefix, , adminOnly]) => (prefix.endsWith("/") ? hash.startsWith(prefix) : hash === prefix || hash.startsWith(`${prefix}/`)) && (!adminOnly || ctx.me.is_admin));
  if (found) {
    const [prefix, nav, , render] = found;
    name = nav;
    current = prefix;
    render(view, decodeURIComponent(hash.slice(prefix.length)));
  } else {
    current = "search";
    searchView.render(view);
  }
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
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
