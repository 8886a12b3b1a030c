// Search: a query with modality, study-date, medical aid, hospital and hospital group filters, and the
// worklist of matching studies below it (worklist.js draws the rows), a page at a time.
// The query lives in memory, not in the address bar, so patient names stay out of the browser history; so
// do the page, the sort, the selected row and the scroll position, which are all there again on coming back.
// While indexing runs the list is never redrawn under the pointer: the page asks how many studies match
// now and offers "N new results: show".

import { api, ApiError } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { count, hospitalName, plural } from "./format.js";
import { createWorklist } from "./worklist.js";

const MODALITIES = ["CT", "MR", "CR", "DX", "US", "MG", "NM", "PT", "XA", "RF", "OT"];
const PAGE = 50;
const NEW_CHECK_MS = 3000;
const EMPTY = { q: "", modality: "", date_from: "", date_to: "", medical_aid: "", hospital: "", hospital_group: "" };
// The South African filters: the search parameter, the select's id, its label, and the facets' list.
const SA_FILTERS = [
  ["medical_aid", "medical-aid", "Any medical aid", "medical_aids"],
  ["hospital", "hospital", "Any hospital", "hospitals"],
  ["hospital_group", "hospital-group", "Any hospital group", "hospital_groups"],
];
const SORT_LABEL = { date: "Newest first", date_asc: "Oldest first", name: "Name A–Z", name_desc: "Name Z–A" };

export function createSearchView(ctx) {
  const asked = { ...EMPTY };
  const shown = { rows: null, total: 0, offset: 0, sort: "date", selected: null, expanded: new Set(), scrollY: 0 };
  let resultsBox = null;
  let newBox = null;
  let busy = false;
  let saSelects = {};
  let facetsSeen;
  let facetsKnown = null;
  let lastCheck = 0;
  let checkTimer = null;
  let seenSeries = null;
  let filtersOpen = false;
  const worklist = createWorklist(ctx, shown, {
    sort: (sort) => {
      shown.sort = sort;
      run({ offset: 0 });
    },
  });

  function render(container) {
    const q = h("input", {
      id: "q",
      type: "search",
      value: asked.q,
      maxlength: "200",
      placeholder: "Patient name, ID, accession or description",
      "aria-label": "Search patients and studies",
      autocomplete: "off",
      spellcheck: "false",
    });
    const modality = h(
      "select",
      { id: "modality", "aria-label": "Modality" },
      h("option", { value: "" }, "Any modality"),
      MODALITIES.map((m) => h("option", { value: m, selected: m === asked.modality }, m)),
    );
    const from = h("input", { id: "date-from", type: "date", value: asked.date_from });
    const to = h("input", { id: "date-to", type: "date", value: asked.date_to });
    saSelects = Object.fromEntries(
      SA_FILTERS.map(([key, id, any]) => [key, h("select", { id, "aria-label": any.replace("Any ", "") }, h("option", { value: "" }, any))]),
    );
    facetsSeen = undefined;
    loadFacets(ctx.status ? ctx.status.series_count : null);
    const formMessage = h("div", { id: "search-message" });
    const filters = h(
      "div",
      { class: "filters-box", id: "filters" },
      h(
        "div",
        { class: "filters" },
        modality,
        h("label", { for: "date-from" }, "Study date from"),
        from,
        h("label", { for: "date-to" }, "to"),
        to,
      ),
      h("div", { class: "filters sa-filters" }, Object.values(saSelects), h("button", { type: "button", class: "quiet", id: "search-clear", onclick: () => clearForm() }, "Clear")),
    );
    const filtersToggle = h("button", { type: "button", class: "filters-toggle", id: "filters-toggle", "aria-controls": "filters", "aria-expanded": String(filtersOpen) }, "Filters");
    filtersToggle.addEventListener("click", () => {
      filtersOpen = !filtersOpen;
      filtersToggle.setAttribute("aria-expanded", String(filtersOpen));
      filters.classList.toggle("open", filtersOpen);
    });
    filters.classList.toggle("open", filtersOpen);
    const form = h(
      "form",
      { class: "search-form", role: "search", "aria-label": "Find a study" },
      h("h2", { class: "visually-hidden" }, "Worklist"),
      h("div", { class: "search-main" }, q, h("button", { type: "submit", class: "primary", id: "search-button" }, "Search"), filtersToggle),
      filters,
      formMessage,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      replace(formMessage);
      if (from.value && to.value && from.value > to.value) {
        replace(formMessage, notice(`The study date from (${from.value}) is after the study date to (${to.value}): swap them, or clear one.`, "error"));
        from.focus();
        return;
      }
      Object.assign(asked, { q: q.value.trim(), modality: modality.value, date_from: from.value, date_to: to.value });
      for (const [key, select] of Object.entries(saSelects)) asked[key] = select.value;
      shown.selected = null;
      shown.expanded.clear();
      run({ offset: 0 });
    });
    function clearForm() {
      q.value = "";
      modality.value = "";
      from.value = "";
      to.value = "";
      for (const select of Object.values(saSelects)) select.value = "";
      Object.assign(asked, EMPTY);
      shown.rows = null;
      showResults();
      q.focus();
    }
    newBox = h("div", { class: "new-results", id: "new-results", role: "status" });
    resultsBox = h("section", { class: "results", id: "results", "aria-label": "Studies", "aria-busy": "false" });
    replace(container, form, newBox, resultsBox);
    showResults();
    if (ctx.status) refresh(ctx.status); // indexing may have added studies while another view was shown
    if (shown.rows && shown.selected) {
      window.scrollTo(0, shown.scrollY); // back from a study: where the user was, on the row they had chosen
      worklist.focusSelected();
    } else {
      q.focus();
    }
  }

  // Before another view replaces this one: remember where the user was.
  function remember() {
    if (resultsBox && resultsBox.isConnected) shown.scrollY = window.scrollY;
  }

  async function run({ offset, background = false, keepNew = false }) {
    if (busy) return;
    busy = true;
    resultsBox?.setAttribute("aria-busy", "true");
    try {
      const page = await api("/api/studies", { params: { ...asked, sort: shown.sort, limit: PAGE, offset }, background });
      Object.assign(shown, { rows: page.items, total: page.total, offset });
      seenSeries = ctx.status ? ctx.status.series_count : null;
      if (!keepNew) replace(newBox);
      showResults();
      if (!background) window.scrollTo(0, 0);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) {
        shown.rows = null;
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
    if (facetsKnown) fillFacets(facetsKnown); // at once, so the form has its size before the scroll is restored
    try {
      facetsKnown = await api("/api/search/facets", { background: true });
    } catch {
      return; // no index yet: the filters offer "any" until there is one
    }
    fillFacets(facetsKnown);
  }

  function fillFacets(facets) {
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

  // Called with every indexing status: when indexing has added series since the list was drawn, ask (at
  // most every few seconds) how many studies match now, and offer the new ones; never redraw by itself.
  function refresh(status) {
    const filters = Object.values(saSelects)[0];
    if (filters && filters.isConnected && status.series_count !== facetsSeen) loadFacets(status.series_count);
    if (!shown.rows || !resultsBox || !resultsBox.isConnected || status.series_count === seenSeries) return;
    if (checkTimer) return;
    const wait = Math.max(0, lastCheck + NEW_CHECK_MS - Date.now());
    checkTimer = setTimeout(checkNew, wait);
  }

  async function checkNew() {
    checkTimer = null;
    lastCheck = Date.now();
    seenSeries = ctx.status ? ctx.status.series_count : seenSeries;
    if (!shown.rows || !newBox || !newBox.isConnected) return;
    let now;
    try {
      now = await api("/api/studies/count", { params: asked, background: true });
    } catch {
      return;
    }
    const more = now.total - shown.total;
    if (more <= 0) return;
    const button = h("button", { type: "button", id: "show-new", class: "link-button" }, "show");
    button.addEventListener("click", () => run({ offset: 0 }));
    replace(newBox, h("p", { class: "notice" }, `${plural(more, "new result")}: `, button));
  }

  function showResults() {
    if (!resultsBox) return;
    if (!shown.rows) {
      replace(resultsBox, h("p", { class: "muted hint" }, "Type part of a name, a patient ID or an accession number, or press Search to list the newest studies. Press / to come back to the search box."));
      return;
    }
    if (shown.rows.length === 0) {
      replace(resultsBox, notice(shown.offset ? "No more studies." : "No studies match. Check the spelling, or widen the dates or modality."));
      return;
    }
    const first = shown.offset + 1;
    const last = shown.offset + shown.rows.length;
    const sortSelect = h(
      "select",
      { id: "sort", "aria-label": "Order" },
      Object.entries(SORT_LABEL).map(([value, label]) => h("option", { value, selected: value === shown.sort }, label)),
    );
    sortSelect.addEventListener("change", () => {
      shown.sort = sortSelect.value;
      run({ offset: 0 });
    });
    const summary = h(
      "div",
      { class: "summary-row" },
      h("p", { class: "summary", id: "result-summary" }, `${count(first)}–${count(last)} of ${plural(shown.total, "study", "studies")}`),
      h("p", { class: "keys-hint muted", "aria-hidden": "true" }, "Keys: ↑ ↓ move · Enter opens · → series · V images · / search"),
      sortSelect,
    );
    const pager = h(
      "nav",
      { class: "pager", "aria-label": "Pages of results" },
      h("button", { type: "button", id: "page-prev", disabled: shown.offset === 0, onclick: () => run({ offset: Math.max(0, shown.offset - PAGE) }) }, "← Previous"),
      h("span", {}, `Page ${count(Math.floor(shown.offset / PAGE) + 1)} of ${count(Math.max(1, Math.ceil(shown.total / PAGE)))}`),
      h("button", { type: "button", id: "page-next", disabled: last >= shown.total, onclick: () => run({ offset: shown.offset + PAGE }) }, "Next →"),
    );
    replace(resultsBox, summary, worklist.table(), shown.total > PAGE ? pager : null);
  }

  return { render, refresh, remember };
}
