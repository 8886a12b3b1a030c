// The worklist's rows: one per study (patient as people write the name, age and sex; study date;
// modalities; description; series and images; referring doctor; hospital and medical-aid chips), its series
// unfolding underneath with thumbnails. Keyboard: ↑ and ↓ move through the rows, Enter opens the study,
// → shows its series and ← hides them, Home and End go to the first and last row, V views the images.

import { api } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { ageSex, count, dicomDate, hospitalName, personName, plural, qualityBadge, saId } from "./format.js";

const SORTABLE = { name: ["name", "name_desc"], date: ["date", "date_asc"] };

// The image viewer (viewer.js) shows a series with the rest of its study in a strip: a study opens on its
// first series (app.js resolves this address with the study's series, then goes to /viewer/<SeriesKey>).
export function viewerHref(study) {
  return `#/viewer/study/${encodeURIComponent(study.StudyKey)}`;
}

export function studyHref(key) {
  return `#/study/${encodeURIComponent(key)}`;
}

// `shown` is the search view's memory (rows, sort, selected key, unfolded keys); `on.sort(sort)` re-asks.
export function createWorklist(ctx, shown, on) {
  let body = null;
  let drawn = null;

  function table() {
    if (shown.rows !== drawn) loaded.clear(); // a new page or search: the series may have changed
    drawn = shown.rows;
    body = h("tbody", {});
    for (const row of shown.rows) body.append(...studyRows(row));
    const rows = rowsOf();
    if (!rows.some((r) => r.dataset.key === shown.selected)) shown.selected = rows[0]?.dataset.key ?? null;
    for (const r of rows) setSelected(r, r.dataset.key === shown.selected);
    body.addEventListener("keydown", keydown);
    return h(
      "div",
      { class: "table-wrap worklist-wrap" },
      h(
        "table",
        { class: "worklist", id: "worklist" },
        h("caption", { class: "visually-hidden" }, "Studies. Arrow keys move through the rows, Enter opens a study, right arrow shows its series."),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col", class: "col-expand" }, h("span", { class: "visually-hidden" }, "Series")),
            sortHeader("Patient", "name"),
            sortHeader("Date", "date"),
            h("th", { scope: "col" }, "Modality"),
            h("th", { scope: "col" }, "Description"),
            h("th", { scope: "col", class: "num" }, "Series / images"),
            h("th", { scope: "col" }, "Referring"),
            h("th", { scope: "col" }, "Hospital, medical aid"),
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Images")),
          ),
        ),
        body,
      ),
    );
  }

  function sortHeader(label, column) {
    const [first, second] = SORTABLE[column];
    const current = shown.sort === first ? (column === "date" ? "descending" : "ascending") : shown.sort === second ? (column === "date" ? "ascending" : "descending") : "none";
    const next = shown.sort === first ? second : first;
    const arrow = current === "ascending" ? " ▲" : current === "descending" ? " ▼" : "";
    return h(
      "th",
      { scope: "col", "aria-sort": current, class: `sortable col-${column}` },
      h("button", { type: "button", class: "sort", id: `sort-${column}`, onclick: () => on.sort(next) }, label, h("span", { "aria-hidden": "true" }, arrow)),
    );
  }

  function studyRows(r) {
    const key = r.StudyKey;
    const open = shown.expanded.has(key);
    const seriesCell = h("td", { colspan: "9" });
    const seriesRow = h("tr", { class: "series-row", hidden: !open, "data-for": key }, seriesCell);
    const toggle = h(
      "button",
      { type: "button", class: "expand", "aria-expanded": String(open), "aria-label": `Series of ${personName(r.PatientName)}, ${dicomDate(r.StudyDate) || "no date"}`, tabindex: "-1" },
      h("span", { "aria-hidden": "true" }, "▸"),
    );
    toggle.addEventListener("click", (event) => {
      event.stopPropagation();
      unfold(key, !shown.expanded.has(key));
    });
    const chips = [
      r.hospital || r.hospital_group ? h("span", { class: "chip hospital", title: hospitalName(r.hospital, r.hospital_group) }, r.hospital || r.hospital_group) : null,
      r.medical_aid ? h("span", { class: "chip aid" }, r.medical_aid) : null,
    ];
    const row = h(
      "tr",
      { class: "study-row", "data-key": key, tabindex: "-1" },
      h("td", { class: "col-expand" }, toggle),
      h(
        "td",
        { class: "patient-cell" },
        h("a", { href: studyHref(key), class: "patient-name", tabindex: "-1" }, personName(r.PatientName)),
        h(
          "span",
          { class: "who-line" },
          ageSex(r.age, r.PatientSex),
          r.PatientID && r.PatientID !== r.sa_id ? h("span", { class: "nowrap" }, `${r.age || r.PatientSex ? " · " : ""}ID ${r.PatientID}`) : null,
          r.sa_id ? h("span", { class: "sa-id nowrap" }, " · SA ID ", saId(r.sa_id)) : null,
        ),
        qualityBadge(r.sa_id_issues),
        r.study_uid_shared ? h("span", { class: "badge dq study-shared", title: "The same StudyInstanceUID is filed under another patient too: check the filing" }, "⚠ Study UID shared with another patient") : null,
        r.filling ? h("span", { class: "badge filling", title: "The first indexing of the archive has not read all images of this study yet: more will appear" }, "Still being indexed") : null,
      ),
      h("td", { class: "date nowrap" }, dicomDate(r.StudyDate) || "no date"),
      h("td", { class: "mods" }, r.modalities.length ? r.modalities.map((m) => h("span", { class: "modality" }, m)) : "–"),
      h("td", { class: "desc" }, r.StudyDescription || h("span", { class: "muted" }, "(no description)")),
      h("td", { class: "num nowrap" }, `${count(r.series_count)} / ${count(r.image_count)}`),
      h("td", { class: "ref" }, r.ReferringPhysicianName ? personName(r.ReferringPhysicianName) : "–"),
      h("td", { class: "chips" }, chips),
      h("td", { class: "view" }, r.StudyInstanceUID ? h("a", { href: viewerHref(r), class: "view-link", tabindex: "-1", "aria-label": `View images of ${personName(r.PatientName)}, ${dicomDate(r.StudyDate) || "no date"}` }, "View") : null),
    );
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, button")) return;
      select(row, true);
    });
    row.addEventListener("dblclick", () => openStudy(key));
    if (open) loadSeries(key, seriesCell);
    return [row, seriesRow];
  }

  function rowsOf() {
    return body ? [...body.querySelectorAll("tr.study-row")] : [];
  }

  function setSelected(row, on) {
    row.classList.toggle("selected", on);
    row.tabIndex = on ? 0 : -1;
    if (on) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }

  function select(row, focus) {
    for (const r of rowsOf()) setSelected(r, r === row);
    shown.selected = row.dataset.key;
    if (focus) row.focus();
  }

  function focusSelected() {
    const row = rowsOf().find((r) => r.dataset.key === shown.selected);
    if (row) row.focus({ preventScroll: true });
  }

  function openStudy(key) {
    shown.selected = key;
    location.hash = studyHref(key);
  }

  function unfold(key, open) {
    const row = rowsOf().find((r) => r.dataset.key === key);
    const seriesRow = body.querySelector(`tr.series-row[data-for="${CSS.escape(key)}"]`);
    if (!row || !seriesRow) return;
    if (open) shown.expanded.add(key);
    else shown.expanded.delete(key);
    row.querySelector("button.expand").setAttribute("aria-expanded", String(open));
    seriesRow.hidden = !open;
    if (open && !seriesRow.dataset.loaded) loadSeries(key, seriesRow.firstChild);
  }

  // Kept for this list, so coming back draws the open series at once and the page does not shift.
  const loaded = new Map();

  async function loadSeries(key, cell) {
    cell.parentElement.dataset.loaded = "1";
    let study = loaded.get(key);
    if (!study) {
      replace(cell, h("p", { class: "muted" }, "Loading series…"));
      try {
        study = await api(`/api/studies/${encodeURIComponent(key)}`);
      } catch (err) {
        cell.parentElement.dataset.loaded = "";
        replace(cell, notice(err.message, "error"));
        return;
      }
      loaded.set(key, study);
    }
    replace(cell, seriesList(study));
  }

  function keydown(event) {
    const row = event.target.closest?.("tr.study-row");
    if (!row || event.target !== row) return;
    const rows = rowsOf();
    const at = rows.indexOf(row);
    const go = (i) => {
      event.preventDefault();
      const target = rows[Math.max(0, Math.min(rows.length - 1, i))];
      select(target, true);
    };
    switch (event.key) {
      case "ArrowDown":
        return go(at + 1);
      case "ArrowUp":
        return go(at - 1);
      case "Home":
        return go(0);
      case "End":
        return go(rows.length - 1);
      case "ArrowRight":
        event.preventDefault();
        return unfold(row.dataset.key, true);
      case "ArrowLeft":
        event.preventDefault();
        return unfold(row.dataset.key, false);
      case "Enter":
        event.preventDefault();
        return openStudy(row.dataset.key);
      case "v": {
        const view = row.querySelector("a.view-link");
        if (view) location.hash = view.getAttribute("href");
        return undefined;
      }
      default:
        return undefined;
    }
  }

  return { table, focusSelected };
}

// The series of a study as cards: thumbnail (a placeholder when there is none), number, modality,
// description and images; each opens the series.
export function seriesList(study, { links = true } = {}) {
  if (!study.series.length) return notice("This study has no series left in the index.");
  return h(
    "ul",
    { class: "series-cards" },
    study.series.map((s) => {
      const label = `${s.Modality || "?"} ${s.SeriesDescription || "(no description)"}`;
      const text = [
        thumbnail(s),
        h("span", { class: "series-text" }, h("span", { class: "series-name" }, s.SeriesNumber !== null && s.SeriesNumber !== undefined ? `${s.SeriesNumber}. ` : "", label), h("span", { class: "muted" }, plural(s.file_count, "image"), s.filling ? " (still being indexed)" : "")),
      ];
      return h("li", { class: "series-card" }, links ? h("a", { href: `#/series/${s.SeriesKey}`, class: "series-link" }, text) : text);
    }),
  );
}

function thumbnail(s) {
  const placeholder = h("span", { class: "thumb placeholder", "aria-hidden": "true" }, s.Modality || "?");
  const img = h("img", { class: "thumb", loading: "lazy", alt: "", width: "96", height: "96", src: `/api/series/${encodeURIComponent(s.SeriesKey)}/thumbnail` });
  img.addEventListener("error", () => img.replaceWith(placeholder)); // no thumbnail (yet): the modality instead
  return img;
}
