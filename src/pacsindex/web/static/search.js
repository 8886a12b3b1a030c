// Search: a query with modality, study-date, medical aid, hospital and hospital group filters; results
// grouped patient → study → series, with the SA ID number (and a badge when the header disagrees with it),
// the medical aid and the hospital.
// The query lives in memory, not in the address bar, so patient names stay out of the browser history.
// While indexing runs, the results are fetched again whenever the number of series has grown.

import { api, ApiError } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { count, dicomDate, hospitalName, personName, plural, qualityBadge, saId, sex } from "./format.js";

const MODALITIES = ["CT", "MR", "CR", "DX", "US", "MG", "NM", "PT", "XA", "RF", "OT"];
const PAGE = 100;
const EMPTY = { q: "", modality: "", date_from: "", date_to: "", medical_aid: "", hospital: "", hospital_group: "" };
// The South African filters: the search parameter, the select's id, its label, and the facets' list.
const SA_FILTERS = [
  ["medical_aid", "medical-aid", "Any medical aid", "medical_aids"],
  ["hospital", "hospital", "Any hospital", "hospitals"],
  ["hospital_group", "hospital-group", "Any hospital group", "hospital_groups"],
];

export function createSearchView(ctx) {
  const asked = { ...EMPTY };
  let rows = null;
  let more = false;
  let seenSeries = null;
  let resultsBox = null;
  let busy = false;
  let saSelects = {};
  let facetsSeen;

  function render(container) {
    const q = h("input", {
      id: "q",
      type: "search",
      value: asked.q,
      maxlength: "200",
      placeholder: "Patient name, ID, accession or description",
      "aria-label": "Search",
      autocomplete: "off",
      spellcheck: "false",
    });
    const modality = h(
      "select",
      { id: "modality", "aria-label": "Modality" },
      h("option", { value: "" }, "Any modality"),
      MODALITIES.map((m) => h("option", { value: m, selected: m === asked.modality }, m)),
    );
    const from = h("input", { id: "date-from", type: "date", value: asked.date_from, "aria-label": "Study date from" });
    const to = h("input", { id: "date-to", type: "date", value: asked.date_to, "aria-label": "Study date to" });
    saSelects = Object.fromEntries(
      SA_FILTERS.map(([key, id, any]) => [key, h("select", { id, "aria-label": any.replace("Any ", "") }, h("option", { value: "" }, any))]),
    );
    facetsSeen = undefined;
    loadFacets(ctx.status ? ctx.status.series_count : null);
    const form = h(
      "form",
      { class: "search-form", role: "search" },
      h("h2", { class: "visually-hidden" }, "Search"),
      h("div", { class: "search-main" }, q, h("button", { type: "submit", class: "primary", id: "search-button" }, "Search")),
      h(
        "div",
        { class: "filters" },
        modality,
        h("label", { for: "date-from" }, "Study date from"),
        from,
        h("label", { for: "date-to" }, "to"),
        to,
        h("button", { type: "button", class: "quiet", id: "search-clear", onclick: () => clearForm() }, "Clear"),
      ),
      h("div", { class: "filters sa-filters" }, Object.values(saSelects)),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      Object.assign(asked, { q: q.value.trim(), modality: modality.value, date_from: from.value, date_to: to.value });
      for (const [key, select] of Object.entries(saSelects)) asked[key] = select.value;
      run(false);
    });
    function clearForm() {
      q.value = "";
      modality.value = "";
      from.value = "";
      to.value = "";
      for (const select of Object.values(saSelects)) select.value = "";
      Object.assign(asked, EMPTY);
      rows = null;
      showResults();
      q.focus();
    }
    resultsBox = h("section", { class: "results", id: "results", "aria-live": "polite", "aria-busy": "false" });
    replace(container, form, resultsBox);
    showResults();
    q.focus();
  }

  async function run(background, append = false) {
    if (busy) return;
    busy = true;
    resultsBox?.setAttribute("aria-busy", "true");
    const offset = append ? rows.length : 0;
    try {
      const page = await api("/api/search", { params: { ...asked, limit: PAGE, offset }, background });
      rows = append ? rows.concat(page) : page;
      more = page.length === PAGE;
      seenSeries = ctx.status ? ctx.status.series_count : null;
      showResults();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) {
        rows = null;
        replace(resultsBox, notice(err.message, err.status === 404 ? "info" : "error"));
      }
    } finally {
      busy = false;
      resultsBox?.setAttribute("aria-busy", "false");
    }
  }

  // The filters' choices: what the index holds, with how many patients or studies each.
  async function loadFacets(seriesCount) {
    facetsSeen = seriesCount;
    let facets;
    try {
      facets = await api("/api/search/facets", { background: true });
    } catch {
      return; // no index yet: the filters offer "any" until there is one
    }
    for (const [key, , any, list] of SA_FILTERS) {
      const select = saSelects[key];
      const unit = key === "medical_aid" ? "patient" : "study";
      const choices = facets[list].map((f) =>
        h("option", { value: f.name, selected: f.name === asked[key] }, `${key === "hospital" ? hospitalName(f.name, f.group) : f.name} (${plural(f.count, unit, unit === "study" ? "studies" : "patients")})`),
      );
      if (asked[key] && !facets[list].some((f) => f.name === asked[key])) choices.push(h("option", { value: asked[key], selected: true }, asked[key]));
      replace(select, h("option", { value: "" }, any), choices);
      select.value = asked[key];
    }
  }

  // Called after each status poll: fetch again if indexing has added series since the last search.
  function refresh(status) {
    const filters = Object.values(saSelects)[0];
    if (filters && filters.isConnected && status.series_count !== facetsSeen) loadFacets(status.series_count);
    if (!rows || !resultsBox || !resultsBox.isConnected) return;
    if (status.series_count !== seenSeries) run(true);
  }

  function showResults() {
    if (!resultsBox) return;
    if (!rows) {
      replace(resultsBox, h("p", { class: "muted hint" }, "Type part of a name, a patient ID or an accession number, or press Search to list the newest studies. Press / to come back to the search box."));
      return;
    }
    if (rows.length === 0) {
      replace(resultsBox, notice("No series match. Check the spelling, or widen the dates or modality."));
      return;
    }
    const groups = group(rows);
    const summary = h(
      "p",
      { class: "summary", id: "result-summary" },
      `${plural(rows.length, "series", "series")} in ${plural(groups.size, "patient")}${more ? " (more below)" : ""}`,
    );
    const list = [...groups.values()].map(patientBlock);
    const moreButton = more
      ? h("button", { type: "button", class: "more", onclick: () => run(false, true) }, "Show more results")
      : null;
    replace(resultsBox, summary, list, moreButton);
  }

  return { render, refresh };
}

function group(rows) {
  const patients = new Map();
  for (const r of rows) {
    const pkey = `${r.PatientID ?? ""}\u001f${r.PatientName ?? ""}`;
    let p = patients.get(pkey);
    if (!p) {
      p = { row: r, studies: new Map() };
      patients.set(pkey, p);
    }
    const skey = r.StudyInstanceUID || `${r.StudyDate}|${r.AccessionNumber}|${r.StudyDescription}`;
    let s = p.studies.get(skey);
    if (!s) {
      s = { row: r, series: [] };
      p.studies.set(skey, s);
    }
    s.series.push(r);
  }
  return patients;
}

function patientBlock(p) {
  const r = p.row;
  return h(
    "article",
    { class: "patient" },
    h(
      "header",
      { class: "patient-head" },
      h("h3", {}, personName(r.PatientName)),
      h(
        "span",
        { class: "demo" },
        h("span", {}, h("span", { class: "label" }, "ID "), r.PatientID || "–"),
        h("span", {}, h("span", { class: "label" }, "Born "), dicomDate(r.PatientBirthDate) || "–"),
        h("span", {}, sex(r.PatientSex) || "–"),
        r.sa_id ? h("span", { class: "sa-id" }, h("span", { class: "label" }, "SA ID "), saId(r.sa_id)) : null,
        qualityBadge(r.sa_id_issues),
        r.medical_aid ? h("span", { class: "chip aid", title: "Medical aid" }, r.medical_aid) : null,
      ),
    ),
    [...p.studies.values()].map(studyBlock),
  );
}

function studyBlock(s) {
  const r = s.row;
  return h(
    "div",
    { class: "study" },
    h(
      "div",
      { class: "study-head" },
      h("span", { class: "date" }, dicomDate(r.StudyDate) || "no date"),
      h("span", { class: "desc" }, r.StudyDescription || "(no description)"),
      h("span", { class: "acc" }, h("span", { class: "label" }, "Accession "), r.AccessionNumber || "–"),
      r.hospital || r.hospital_group ? h("span", { class: "chip hospital", title: "Hospital" }, hospitalName(r.hospital, r.hospital_group)) : null,
    ),
    h(
      "table",
      { class: "series-table" },
      h(
        "thead",
        {},
        h("tr", {}, h("th", { scope: "col", class: "num" }, "#"), h("th", { scope: "col" }, "Modality"), h("th", { scope: "col" }, "Series"), h("th", { scope: "col", class: "num" }, "Files")),
      ),
      h(
        "tbody",
        {},
        s.series.map((x) =>
          h(
            "tr",
            {},
            h("td", { class: "num" }, x.SeriesNumber ?? "–"),
            h("td", {}, h("span", { class: "modality" }, x.Modality || "?")),
            h("td", {}, h("a", { href: `#/series/${x.SeriesKey}`, class: "series-link" }, x.SeriesDescription || "(no description)")),
            h("td", { class: "num" }, count(x.file_count), x.filling ? h("span", { class: "filling", title: "The first index is still reading this series' files" }, " (filling)") : null),
          ),
        ),
      ),
    ),
  );
}
