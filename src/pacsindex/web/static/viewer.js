// The image viewer: one series at a time with its study's other series in a strip, for staff (/viewer/KEY)
// and share recipients (/share/TOKEN/view) alike. The page says where its listing is (data-listing); the
// listing gives every URL after that (images, thumbnails, the other series), so the viewer never builds a
// URL a recipient could not use. Images are drawn by the server (windowed PNGs) and painted on a canvas
// with zoom and pan; neighbours are fetched ahead so scrolling feels immediate.
//
// Scroll: wheel, slider, arrow keys, PageUp/PageDown, Home/End, a vertical swipe on a phone. Window: the
// presets (keys 1-5), or drag with the mouse (left/right: width, up/down: level). Zoom: ctrl+wheel, pinch,
// the + and − buttons; pan: drag with the right button or shift; F fits the image again. Multi-frame
// images play with the Play button (or the space bar).

import { dicomDate, personName } from "./format.js";
import { h, replace } from "./dom.js";

const PRESETS = [
  { key: "1", name: "Soft tissue", c: 40, w: 400 },
  { key: "2", name: "Lung", c: -600, w: 1500 },
  { key: "3", name: "Bone", c: 400, w: 1800 },
  { key: "4", name: "Brain", c: 40, w: 80 },
];
const AHEAD = 4; // images fetched ahead (and behind) of the one shown
const KEPT = 80; // rendered images kept in memory
const FPS = 10;

const body = document.body;
const state = {
  listing: null,
  entries: [], // [{image, frame}] in viewing order; a multi-frame image becomes one entry per frame
  index: 0,
  window: null, // null: each file's own (or automatic) window; else {c, w}
  shownWindow: null, // the window of the image on screen, as the server reported it
  zoom: 1,
  panX: 0,
  panY: 0,
  playing: null,
  cache: new Map(), // url -> Promise<{bitmap, headers}>
  bitmap: null,
  info: {},
  drawSeq: 0,
};

const canvas = h("canvas", { id: "v-canvas", "aria-label": "Image", role: "img" });
const overlay = {
  tl: h("div", { class: "v-ov tl", id: "v-patient" }),
  tr: h("div", { class: "v-ov tr", id: "v-series" }),
  bl: h("div", { class: "v-ov bl", id: "v-position" }),
  br: h("div", { class: "v-ov br", id: "v-window" }),
};
const problem = h("div", { class: "v-problem", id: "v-problem", role: "status", hidden: true });
const slider = h("input", { type: "range", id: "v-slider", min: 0, max: 0, value: 0, "aria-label": "Image in series" });
const strip = h("nav", { class: "v-strip", id: "v-strip", "aria-label": "Series of this study" });
const playButton = h("button", { type: "button", id: "v-play", hidden: true, onclick: () => togglePlay() }, "Play");
const stage = h("div", { class: "v-stage", id: "v-stage" }, canvas, overlay.tl, overlay.tr, overlay.bl, overlay.br, problem);
const message = h("p", { class: "v-message", id: "v-message", role: "status" }, "Loading images…");

function toolbar() {
  const presets = PRESETS.map((p) =>
    h("button", { type: "button", class: "v-preset", "data-preset": p.name, title: `${p.name} (key ${p.key})`, onclick: () => setWindow({ c: p.c, w: p.w }) }, p.name),
  );
  return h(
    "header",
    { class: "v-bar" },
    h("a", { href: body.dataset.back || "/", class: "v-back" }, `← ${body.dataset.backLabel || "Back"}`),
    h("div", { class: "v-tools", role: "toolbar", "aria-label": "Viewer tools" }, [
      ...presets,
      h("button", { type: "button", class: "v-preset", "data-preset": "File", title: "The window stored in the file (key 5)", onclick: () => setWindow(null) }, "File"),
      h("button", { type: "button", id: "v-zoom-out", title: "Zoom out", onclick: () => zoomBy(1 / 1.25) }, "−"),
      h("button", { type: "button", id: "v-zoom-in", title: "Zoom in", onclick: () => zoomBy(1.25) }, "+"),
      h("button", { type: "button", id: "v-fit", title: "Fit to screen (F)", onclick: () => fit() }, "Fit"),
      playButton,
    ]),
  );
}

// -- loading ------------------------------------------------------------------------------------------------

async function openSeries(url) {
  stopPlay();
  message.hidden = false;
  message.textContent = "Loading images…";
  let r;
  try {
    r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  } catch {
    message.textContent = "The server cannot be reached.";
    return;
  }
  if (!r.ok) {
    let detail = "";
    try {
      detail = (await r.json()).detail || "";
    } catch {}
    message.textContent = r.status === 401 ? "Sign in to pacsindex first, then open the viewer again." : detail || `The images cannot be shown (${r.status}).`;
    return;
  }
  const listing = await r.json();
  state.listing = listing;
  state.entries = listing.images.map((image) => ({ image, frame: 1, frames: null }));
  state.cache.clear();
  state.index = 0;
  state.zoom = 1;
  state.panX = state.panY = 0;
  showStrip(listing);
  if (!state.entries.length) {
    message.textContent = "This series holds no images.";
    return;
  }
  message.hidden = true;
  slider.max = String(state.entries.length - 1);
  await show(0);
}

function showStrip(listing) {
  const current = listing.series.SeriesKey;
  replace(
    strip,
    listing.study.map((s) =>
      h(
        "button",
        {
          type: "button",
          class: `v-thumb${s.SeriesKey === current ? " current" : ""}`,
          "aria-current": s.SeriesKey === current ? "true" : null,
          "data-series": s.SeriesKey,
          onclick: () => openSeries(s.images_url),
        },
        h("img", { src: s.thumbnail_url, alt: "", loading: "lazy", width: 64, height: 64 }),
        h("span", {}, `${s.SeriesNumber ?? "–"} ${s.Modality || ""}`),
        h("span", { class: "v-desc" }, s.SeriesDescription || "(no description)"),
      ),
    ),
  );
}

function renderUrl(entry) {
  const size = Math.min(1024, Math.max(256, Math.round(Math.max(stage.clientWidth, stage.clientHeight) * (window.devicePixelRatio || 1))));
  const q = new URLSearchParams({ size: String(size) });
  if (body.dataset.format === "jpeg") {
    q.set("format", "jpeg");
    q.set("quality", "90");
  }
  if (entry.frame > 1 || entry.frames > 1) q.set("frame", String(entry.frame));
  if (state.window) {
    q.set("wc", String(Math.round(state.window.c)));
    q.set("ww", String(Math.max(1, Math.round(state.window.w))));
  }
  return `${entry.image.url}?${q}`;
}

// Requests go out at most IN_FLIGHT at a time, the image on screen first. When the user has scrolled on,
// prefetches that are no longer near the image shown are dropped before they are sent, so a fast scroll
// through a long series never queues the server behind images nobody will see.
const IN_FLIGHT = 4;
const queue = []; // jobs not yet sent: {url, at, start}
let sending = 0;

function load(entry, urgent = false) {
  const url = renderUrl(entry);
  let got = state.cache.get(url);
  if (got) {
    state.cache.delete(url); // most recently used last
    state.cache.set(url, got);
    const waiting = queue.findIndex((j) => j.url === url);
    if (urgent && waiting > 0) queue.unshift(...queue.splice(waiting, 1));
    return got;
  }
  const job = { url, at: state.entries.indexOf(entry) };
  got = new Promise((resolve, reject) => {
    job.start = () => {
      sending++;
      fetch(url, { credentials: "same-origin" })
        .then(async (r) => {
          if (!r.ok) {
            const why = { 401: "Your session has ended: sign in again.", 403: "This link needs its passcode again.", 410: "This link has ended." };
            throw new Error(why[r.status] || `Image not available (${r.status})`);
          }
          const blob = await r.blob();
          return { bitmap: await createImageBitmap(blob), headers: r.headers };
        })
        .then(resolve, reject)
        .finally(() => {
          sending--;
          pump();
        });
    };
    job.reject = reject;
  });
  got.catch(() => state.cache.delete(url));
  state.cache.set(url, got);
  while (state.cache.size > KEPT) state.cache.delete(state.cache.keys().next().value);
  if (urgent) queue.unshift(job);
  else queue.push(job);
  pump();
  return got;
}

function pump() {
  while (sending < IN_FLIGHT && queue.length) {
    queue.shift().start();
  }
}

// Drop what is queued and no longer near the image shown.
function prune() {
  for (let i = queue.length - 1; i >= 0; i--) {
    const job = queue[i];
    if (Math.abs(job.at - state.index) > AHEAD) {
      queue.splice(i, 1);
      state.cache.delete(job.url);
      job.reject(new Error("skipped"));
    }
  }
}

function prefetch() {
  prune();
  for (let d = 1; d <= AHEAD; d++) {
    for (const i of [state.index + d, state.index - d]) {
      if (i >= 0 && i < state.entries.length) load(state.entries[i]).catch(() => {});
    }
  }
}

async function show(index) {
  if (!state.entries.length) return;
  state.index = Math.max(0, Math.min(state.entries.length - 1, index));
  slider.value = String(state.index);
  slider.setAttribute("aria-valuetext", `Image ${state.index + 1} of ${state.entries.length}`);
  const entry = state.entries[state.index];
  const seq = ++state.drawSeq;
  let got;
  prune();
  try {
    got = await load(entry, true);
  } catch (err) {
    if (seq === state.drawSeq) {
      problem.hidden = false;
      problem.textContent = err.message;
    }
    return;
  }
  if (seq !== state.drawSeq) return; // the user has moved on
  state.bitmap = got.bitmap;
  const hd = got.headers;
  const frames = Number(hd.get("X-Frames") || "1");
  if (frames > 1 && entry.frames === null) expandFrames(entry, frames);
  const win = (hd.get("X-Window") || "").split(" ").map(Number);
  state.shownWindow = win.length === 2 && win.every(Number.isFinite) ? { c: win[0], w: win[1] } : null;
  state.info = { position: hd.get("X-Slice-Position"), number: hd.get("X-Instance-Number") };
  const why = hd.get("X-Render-Problem");
  problem.hidden = !why;
  problem.textContent = why ? `Cannot show this image: ${why}` : "";
  paint();
  prefetch();
}

// A multi-frame image: one entry per frame, so the slider, wheel and Play step through its frames.
function expandFrames(entry, frames) {
  const at = state.entries.indexOf(entry);
  const expanded = Array.from({ length: frames }, (_, i) => ({ image: entry.image, frame: i + 1, frames }));
  state.entries.splice(at, 1, ...expanded);
  slider.max = String(state.entries.length - 1);
  playButton.hidden = false;
}

// -- drawing ------------------------------------------------------------------------------------------------

function paint() {
  const dpr = window.devicePixelRatio || 1;
  const cw = Math.max(1, Math.round(stage.clientWidth * dpr));
  const ch = Math.max(1, Math.round(stage.clientHeight * dpr));
  if (canvas.width !== cw || canvas.height !== ch) {
    canvas.width = cw;
    canvas.height = ch;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, cw, ch);
  const b = state.bitmap;
  if (b) {
    const scale = Math.min(cw / b.width, ch / b.height) * state.zoom;
    const w = b.width * scale;
    const hgt = b.height * scale;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(b, (cw - w) / 2 + state.panX * dpr, (ch - hgt) / 2 + state.panY * dpr, w, hgt);
  }
  paintOverlay();
}

function paintOverlay() {
  const l = state.listing;
  if (!l) return;
  const s = l.series;
  const entry = state.entries[state.index];
  replace(overlay.tl, s.PatientName ? h("strong", {}, personName(s.PatientName)) : null, h("div", {}, dicomDate(s.StudyDate)), h("div", {}, s.StudyDescription || ""));
  replace(overlay.tr, h("div", {}, `${s.Modality || ""} · Series ${s.SeriesNumber ?? "–"}`), h("div", {}, s.SeriesDescription || ""));
  const frames = entry && entry.frames > 1 ? ` · frame ${entry.frame}/${entry.frames}` : "";
  const position = state.info.position !== null && state.info.position !== undefined ? `Position ${Number(state.info.position).toFixed(1)} mm` : "";
  replace(overlay.bl, h("div", {}, `Image ${state.index + 1} / ${state.entries.length}${frames}`), h("div", {}, state.info.number ? `Instance ${state.info.number}` : ""), h("div", {}, position));
  const win = state.window || state.shownWindow;
  replace(overlay.br, h("div", {}, win ? `W ${Math.round(win.w)} L ${Math.round(win.c)}` : ""), h("div", {}, `Zoom ${Math.round(state.zoom * 100)}%`));
  for (const b of document.querySelectorAll(".v-preset")) {
    const p = PRESETS.find((x) => x.name === b.dataset.preset);
    const on = p ? state.window && state.window.c === p.c && state.window.w === p.w : b.dataset.preset === "File" && !state.window;
    b.setAttribute("aria-pressed", on ? "true" : "false");
  }
}

function setWindow(win) {
  state.window = win;
  show(state.index);
}

function zoomBy(factor) {
  state.zoom = Math.max(0.25, Math.min(16, state.zoom * factor));
  paint();
}

function fit() {
  state.zoom = 1;
  state.panX = state.panY = 0;
  paint();
}

function step(delta) {
  show(state.index + delta);
}

function togglePlay() {
  if (state.playing) stopPlay();
  else {
    playButton.textContent = "Pause";
    state.playing = setInterval(() => show((state.index + 1) % state.entries.length), 1000 / FPS);
  }
}

function stopPlay() {
  if (state.playing) clearInterval(state.playing);
  state.playing = null;
  playButton.textContent = "Play";
}

// -- input --------------------------------------------------------------------------------------------------

function wire() {
  slider.addEventListener("input", () => show(Number(slider.value)));
  stage.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      if (e.ctrlKey) zoomBy(e.deltaY < 0 ? 1.1 : 1 / 1.1);
      else step(e.deltaY > 0 ? 1 : -1);
    },
    { passive: false },
  );
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement && e.target !== slider) return;
    const keys = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1, PageDown: 10, PageUp: -10 };
    if (e.key in keys) step(keys[e.key]);
    else if (e.key === "Home") show(0);
    else if (e.key === "End") show(state.entries.length - 1);
    else if (e.key === "f" || e.key === "F") fit();
    else if (e.key === " ") togglePlay();
    else if (e.key === "5") setWindow(null);
    else {
      const p = PRESETS.find((x) => x.key === e.key);
      if (!p) return;
      setWindow({ c: p.c, w: p.w });
    }
    e.preventDefault();
  });
  stage.addEventListener("contextmenu", (e) => e.preventDefault());

  // Mouse: left drag sets the window, right drag (or shift) pans. Touch: swipe scrolls, pinch zooms.
  let drag = null;
  let timer = null;
  stage.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "touch") return;
    stage.setPointerCapture(e.pointerId);
    const pan = e.button === 2 || e.shiftKey;
    const start = state.window || state.shownWindow || { c: 40, w: 400 };
    drag = { x: e.clientX, y: e.clientY, pan, start, panX: state.panX, panY: state.panY };
  });
  stage.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (drag.pan) {
      state.panX = drag.panX + dx;
      state.panY = drag.panY + dy;
      paint();
      return;
    }
    const sensitivity = Math.max(1, drag.start.w / 200);
    state.window = { c: drag.start.c + dy * sensitivity, w: Math.max(1, drag.start.w + dx * sensitivity) };
    paintOverlay();
    if (!timer) timer = setTimeout(() => ((timer = null), show(state.index)), 120);
  });
  const end = () => {
    if (drag && !drag.pan) show(state.index);
    drag = null;
  };
  stage.addEventListener("pointerup", end);
  stage.addEventListener("pointercancel", end);

  let touch = null;
  stage.addEventListener(
    "touchstart",
    (e) => {
      if (e.touches.length === 1) touch = { y: e.touches[0].clientY, moved: 0 };
      else if (e.touches.length === 2) touch = { pinch: distance(e.touches), zoom: state.zoom };
    },
    { passive: true },
  );
  stage.addEventListener(
    "touchmove",
    (e) => {
      if (!touch) return;
      e.preventDefault();
      if (touch.pinch && e.touches.length === 2) {
        state.zoom = Math.max(0.25, Math.min(16, (touch.zoom * distance(e.touches)) / touch.pinch));
        paint();
      } else if (e.touches.length === 1 && touch.y !== undefined) {
        const stepPx = 24; // one image per 24 px of swipe
        const dy = e.touches[0].clientY - touch.y;
        const steps = Math.trunc(dy / stepPx);
        if (steps !== 0) {
          touch.y += steps * stepPx;
          step(-steps);
        }
      }
    },
    { passive: false },
  );
  stage.addEventListener("touchend", () => (touch = null));
  window.addEventListener("resize", () => paint());
}

function distance(touches) {
  return Math.hypot(touches[0].clientX - touches[1].clientX, touches[0].clientY - touches[1].clientY);
}

// -- start --------------------------------------------------------------------------------------------------

replace(body, toolbar(), h("main", { class: "v-main" }, strip, h("div", { class: "v-view" }, stage, h("div", { class: "v-scroll" }, slider), message)));
wire();
openSeries(body.dataset.listing);
