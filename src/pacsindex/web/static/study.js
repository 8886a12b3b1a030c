// One study on one page: the patient, the study, its series with thumbnails, and the way to the images.
// It is also what prints (app.css's print rules): one sheet, no menus or buttons.

import { api } from "./api.js";
import { fields, focusHeading, h, notice, replace } from "./dom.js";
import { ageSex, dateTime, dicomDate, dicomTime, hospitalName, personName, plural, qualityBadge, saId, studyLabel } from "./format.js";
import { seriesList, viewerHref } from "./worklist.js";

export async function renderStudy(container, key, ctx) {
  replace(container, h("p", { class: "muted" }, "Loading study…"));
  let s;
  try {
    s = await api(`/api/studies/${encodeURIComponent(key)}`);
  } catch (err) {
    replace(container, backLink(), h("h2", {}, "Study"), notice(err.message, "error"));
    focusHeading(container);
    return;
  }
  const print = h("button", { type: "button", id: "study-print", onclick: () => window.print() }, "Print");
  const actions = h(
    "div",
    { class: "actions no-print" },
    s.StudyInstanceUID ? h("a", { href: viewerHref(s), class: "button primary", id: "study-view" }, "View images") : null,
    print,
  );
  const images = s.series.reduce((n, x) => n + x.file_count, 0);
  replace(
    container,
    backLink(),
    h(
      "article",
      { class: "study-page", id: "study-page" },
      h(
        "header",
        { class: "study-title" },
        h(
          "div",
          {},
          h("h2", { id: "study-patient" }, personName(s.PatientName)),
          h("p", { class: "series-sub" }, [ageSex(s.age, s.PatientSex), s.PatientID ? `ID ${s.PatientID}` : ""].filter(Boolean).join(" · ")),
          h("p", { class: "series-sub", id: "study-what" }, `${studyLabel(s.modalities, s.StudyDescription)} · ${dicomDate(s.StudyDate) || "no date"}`),
        ),
        actions,
      ),
      h(
        "div",
        { class: "detail-grid two" },
        h(
          "section",
          { class: "card" },
          h("h3", {}, "Patient"),
          fields([
            ["Name", personName(s.PatientName)],
            ["Patient ID", s.PatientID],
            ["Born", dicomDate(s.PatientBirthDate)],
            ["Age, sex", ageSex(s.age, s.PatientSex)],
            ["SA ID", s.sa_id ? h("span", {}, saId(s.sa_id), " ", qualityBadge(s.sa_id_issues)) : ""],
            ["Medical aid", s.medical_aid ? h("span", { class: "chip aid" }, s.medical_aid) : ""],
          ]),
        ),
        h(
          "section",
          { class: "card" },
          h("h3", {}, "Study"),
          fields([
            ["Date", `${dicomDate(s.StudyDate)} ${dicomTime(s.StudyTime)}`.trim()],
            ["Description", s.StudyDescription],
            ["Accession", s.AccessionNumber],
            ["Referring", s.ReferringPhysicianName ? personName(s.ReferringPhysicianName) : ""],
            ["Hospital", s.hospital || s.hospital_group ? h("span", { class: "chip hospital" }, hospitalName(s.hospital, s.hospital_group)) : s.InstitutionName],
            ["Series, images", s.filling ? h("span", {}, `${plural(s.series_count, "series", "series")}, ${plural(images, "image")} so far `, h("span", { class: "badge filling", id: "study-filling" }, "Still being indexed")) : `${plural(s.series_count, "series", "series")}, ${plural(images, "image")}`],
          ]),
        ),
      ),
      h("section", { class: "card" }, h("h3", {}, "Series"), seriesList(s)),
      h("p", { class: "print-only muted", id: "study-printed" }, `Printed ${dateTime(new Date().toISOString(), ctx.me.timezone)} by ${ctx.me.name}, from pacsindex. Confidential patient information.`),
      technical([
        ["Study UID", s.StudyInstanceUID],
        ...s.series.map((x) => [`Series ${x.SeriesNumber ?? "?"} UID`, x.SeriesInstanceUID]),
        ...s.series.map((x) => [`Series ${x.SeriesNumber ?? "?"} key`, x.SeriesKey]),
      ]),
    ),
  );
  focusHeading(container);
}

// UIDs, keys, transfer syntaxes and paths, folded away: staff rarely need them, IT sometimes does.
export function technical(pairs, ...more) {
  return h(
    "details",
    { class: "card technical no-print" },
    h("summary", {}, "Technical details"),
    fields(pairs.map(([label, value]) => [label, value ? h("span", { class: "uid" }, value) : ""])),
    more,
  );
}

function backLink() {
  return h("a", { href: "#/search", class: "back no-print" }, "← Back to worklist");
}

// #/viewer/study/<StudyKey>: the viewer on the study's first series (its strip holds the others).
export async function openStudyViewer(container, key) {
  try {
    const s = await api(`/api/studies/${encodeURIComponent(key)}`);
    const first = (s.series || [])[0];
    if (!first) throw new Error("This study has no series to show.");
    location.assign(`/viewer/${encodeURIComponent(first.SeriesKey)}`);
  } catch (err) {
    replace(container, h("h2", {}, "Images"), notice(err.message, "error"));
  }
}
