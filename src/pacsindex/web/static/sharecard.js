// Making a share link from a series: the whole study (default) or the series ticked, who it is for, how
// long it lasts, a made-up passcode (default), a typed one or none, a download limit, and de-identified
// sharing (series whose pixels may carry names are named first, and must be confirmed). The link, the
// passcode and a message ready for e-mail or WhatsApp are shown this once.

import { api } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { bytes, count, dateTime } from "./format.js";

const PRESETS = [
  ["1 hour", 3600],
  ["24 hours", 24 * 3600],
  ["7 days", 7 * 24 * 3600],
];

// Adds the "Share" card under the series heading, once the series view has drawn it.
export function mountShareCard(view, key, ctx) {
  const head = view.querySelector(".series-head");
  if (!head || view.querySelector("#share-panel")) return;
  head.after(shareCard(key, ctx));
}

export function shareCard(key, ctx) {
  const result = h("div", { id: "share-result", "aria-live": "polite" });
  const scopeStudy = h("input", { type: "radio", name: "share-scope", id: "share-scope-study", value: "study", checked: true });
  const scopeSeries = h("input", { type: "radio", name: "share-scope", id: "share-scope-series", value: "series" });
  const seriesBox = h("fieldset", { id: "share-series", class: "share-series", hidden: true }, h("legend", {}, "Series to share"));
  const summary = h("p", { class: "muted", id: "share-summary" });
  const note = h("input", { id: "share-note", type: "text", maxlength: "300", size: "34", placeholder: "e.g. Dr Naidoo, Milpark orthopaedics" });
  const expiry = h(
    "select",
    { id: "share-expiry" },
    PRESETS.map(([label, seconds]) => h("option", { value: String(seconds), selected: seconds === 24 * 3600 }, label)),
  );
  const passMode = h(
    "select",
    { id: "share-passcode-mode" },
    h("option", { value: "generate", selected: true }, "Make one up"),
    h("option", { value: "typed" }, "Type one"),
    h("option", { value: "none" }, "None"),
  );
  const passcode = h("input", {
    id: "share-passcode",
    type: "password",
    autocomplete: "new-password",
    minlength: "6",
    maxlength: "128",
    size: "14",
    hidden: true,
    "aria-label": "Passcode",
  });
  passMode.addEventListener("change", () => {
    passcode.hidden = passMode.value !== "typed";
  });
  const limit = h("input", { id: "share-limit", type: "number", min: "1", max: "1000", step: "1", placeholder: "no limit", inputmode: "numeric" });
  const deid = h("input", { id: "share-deidentify", type: "checkbox" });
  const burned = h("div", { id: "share-burned-in", "aria-live": "polite" });
  const create = h("button", { type: "submit", class: "primary", id: "share-create" }, "Create link");
  let studySeries = [];

  function scope() {
    const body = { SeriesKey: key, whole_study: true, deidentify: deid.checked };
    if (scopeSeries.checked) {
      body.series_keys = [...seriesBox.querySelectorAll("input:checked")].map((box) => box.value);
    }
    return body;
  }

  async function refresh() {
    seriesBox.hidden = !scopeSeries.checked;
    try {
      const preview = await api("/api/shares/preview", { method: "POST", body: scope() });
      if (!studySeries.length) {
        studySeries = preview.series;
        append(seriesBox, preview.series);
      }
      summary.textContent = `${count(preview.series.length)} series, ${count(preview.file_count)} files, ${bytes(preview.total_size)}`;
      showBurnedIn(preview.burned_in);
    } catch (err) {
      summary.textContent = err.message;
    }
  }

  function append(box, series) {
    for (const s of series) {
      const id = `share-s-${s.SeriesKey}`;
      box.append(
        h(
          "div",
          { class: "check" },
          h("input", { type: "checkbox", id, value: s.SeriesKey, checked: true, onchange: refresh }),
          h("label", { for: id }, `${s.SeriesNumber ?? "–"} · ${s.Modality || "?"} · ${s.SeriesDescription || "(no description)"} · ${count(s.file_count)} files`),
        ),
      );
    }
  }

  function showBurnedIn(flagged) {
    if (!deid.checked || !flagged.length) {
      replace(burned);
      return;
    }
    replace(
      burned,
      h(
        "div",
        { class: "notice warn", role: "alert" },
        h("p", {}, "De-identifying cannot remove names burned into the pixels. These series may carry them:"),
        h("ul", {}, flagged.map((f) => h("li", {}, `${f.Modality || "Series"}: ${f.reason}`))),
        h("div", { class: "check" }, h("input", { type: "checkbox", id: "share-accept-burned-in" }), h("label", { for: "share-accept-burned-in" }, "I have checked these images: no names in the pixels")),
      ),
    );
  }

  for (const el of [scopeStudy, scopeSeries, deid]) el.addEventListener("change", refresh);
  refresh();

  const form = h(
    "form",
    { class: "share-form stacked-inline", id: "share-form" },
    h("div", { class: "share-scope", role: "radiogroup", "aria-label": "What to share" }, scopeStudy, h("label", { for: "share-scope-study" }, "The whole study"), scopeSeries, h("label", { for: "share-scope-series" }, "Choose series")),
    seriesBox,
    summary,
    h("div", { class: "inline-form" }, h("label", { for: "share-note" }, "For"), note),
    h(
      "div",
      { class: "inline-form" },
      h("label", { for: "share-expiry" }, "Valid for"),
      expiry,
      h("label", { for: "share-passcode-mode" }, "Passcode"),
      passMode,
      passcode,
      h("label", { for: "share-limit" }, "Downloads"),
      limit,
    ),
    h("div", { class: "check" }, deid, h("label", { for: "share-deidentify" }, "De-identify (teaching, second opinion, research): names, IDs and UIDs removed")),
    burned,
    create,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    create.disabled = true;
    try {
      const body = { ...scope(), expires_in: Number(expiry.value) };
      if (!scopeSeries.checked) delete body.series_keys;
      if (note.value.trim()) body.note = note.value.trim();
      if (passMode.value === "generate") body.generate_passcode = true;
      if (passMode.value === "typed" && passcode.value) body.passcode = passcode.value;
      if (limit.value) body.max_downloads = Number(limit.value);
      if (document.getElementById("share-accept-burned-in")?.checked) body.accept_burned_in = true;
      const made = await api("/api/shares", { method: "POST", body });
      passcode.value = "";
      replace(result, madeLink(made, ctx));
      result.querySelector("#share-url")?.select();
    } catch (err) {
      replace(result, notice(err.message, "error"));
    } finally {
      create.disabled = false;
    }
  });
  return h(
    "section",
    { class: "card share-panel", id: "share-panel", "aria-labelledby": "share-title" },
    h("h3", { id: "share-title" }, "Share"),
    h("p", { class: "muted" }, "A link to view and download the images as a zip any DICOM viewer opens, without signing in. Every use is logged; you can revoke it on the Shares page."),
    form,
    result,
  );
}

function copyButton(id, label, text) {
  const said = h("span", { class: "copy-said", role: "status" });
  const button = h("button", { type: "button", id }, label);
  button.addEventListener("click", async () => {
    said.textContent = (await copyText(text())) ? "Copied." : "Select the text and copy it (Ctrl+C).";
  });
  return [button, said];
}

function madeLink(made, ctx) {
  const url = h("input", { id: "share-url", class: "share-url", readonly: true, value: made.url, "aria-label": "The share link", spellcheck: "false" });
  const message = h("textarea", { id: "share-message", class: "share-message", readonly: true, rows: "6", "aria-label": "Message to send" });
  message.value = made.message;
  const terms = [`${count(made.series.length)} series`, `valid until ${dateTime(made.expires_at, ctx.me.timezone)}`];
  if (made.has_passcode) terms.push("needs the passcode (tell it another way than the link)");
  if (made.max_downloads) terms.push(`${count(made.max_downloads)} download${made.max_downloads === 1 ? "" : "s"}`);
  if (made.deidentified) terms.push("de-identified");
  return h(
    "div",
    { class: "notice success share-made" },
    h("p", {}, `Link made: ${terms.join(", ")}. Copy it now: it is shown only this once.`),
    h("div", { class: "share-url-row" }, url, copyButton("share-copy", "Copy link", () => url.value)),
    made.passcode
      ? h("p", { class: "share-passcode-row" }, "Passcode: ", h("code", { id: "share-passcode-shown" }, made.passcode), " — send it by SMS or phone, not with the link.")
      : null,
    message,
    h("div", { class: "share-url-row" }, copyButton("share-copy-message", "Copy message", () => message.value)),
  );
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "visually-hidden" });
    area.value = text;
    document.body.append(area);
    area.select();
    try {
      return document.execCommand("copy"); // plain http on the practice network: no Clipboard API there
    } catch {
      return false;
    } finally {
      area.remove();
    }
  }
}
