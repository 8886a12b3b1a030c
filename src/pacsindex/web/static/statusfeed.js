// Indexing progress, pushed by the server (GET /api/index/events, server-sent events) instead of polled, and
// the status chip in the header that everyone sees: "Up to date", "Indexing 42 %", "Problem".

import { api, ApiError } from "./api.js";

const RETRY_MS = 5000;

// Calls onStatus(status) with every status the server sends until stop() is called.
export function followStatus(onStatus) {
  let source = null;
  let timer = null;
  let stopped = false;

  function open() {
    source = new EventSource("/api/index/events");
    source.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
    source.addEventListener("error", () => {
      if (stopped || source.readyState !== EventSource.CLOSED) return; // EventSource reconnects by itself
      // Refused (signed out?) or the server went away: ask once, the normal way, then try again later.
      api("/api/index/status", { background: true })
        .then(onStatus)
        .catch((err) => {
          if (err instanceof ApiError && err.status === 401) stopped = true;
        })
        .finally(() => {
          if (!stopped) timer = setTimeout(open, RETRY_MS);
        });
    });
  }

  open();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      source?.close();
    },
  };
}

// "Indexing 42 %" and the like, and the chip's kind: ok, busy, problem or idle.
export function chipText(s) {
  if (!s) return ["Indexing: …", "idle"];
  if (s.running) {
    const pct = s.percent === null || s.percent === undefined ? "" : ` ${Math.floor(s.percent)} %`;
    return [`Indexing${pct}`, "busy"];
  }
  if (s.state === "completed") return ["Up to date", "ok"];
  if (s.state === "failed" || s.state === "interrupted") return ["Indexing problem", "problem"];
  if (s.state === "cancelled") return ["Indexing stopped", "problem"];
  return ["Not indexed yet", "idle"];
}

export function updateChip(chip, status) {
  const [text, kind] = chipText(status);
  chip.textContent = text;
  chip.className = `status-chip ${kind}`;
  chip.title = status && status.message ? status.message : text;
}
