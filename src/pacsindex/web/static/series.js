// One series in full: patient, study and series fields; its UIDs, SeriesKey and files (paths, transfer
// syntaxes) behind "Technical details".

import { api } from "./api.js";
import { fields, focusHeading, h, notice, replace } from "./dom.js";
import { mountOrthancCard } from "./orthanc.js";
import { bytes, count, dicomDate, dicomTime, hospitalName, personName, qualityBadge, saId, saIdIssues, sex, transferSyntax } from "./format.js";
import { technical } from "./study.js";

const SHOWN_FILES = 500;

// `back`: where "Back" goes: the study the series was opened from, or the worklist.
export async function renderSeries(container, key, back = null) {
  const backLink = () => h("a", { href: back || "#/search", class: "back" }, back ? "← Back to study" : "← Back to worklist");
  replace(container, h("p", { class: "muted" }, "Loading series…"));
  let s;
  try {
    s = await api(`/api/series/${encodeURIComponent(key)}`);
  } catch (err) {
    replace(container, backLink(), h("h2", {}, "Series"), notice(err.message, "error"));
    focusHeading(container);
    return;
  }
  const filesBox = h("div", { class: "files" });
  showFiles(filesBox, s.files, SHOWN_FILES);
  replace(
    container,
    backLink(),
    h(
      "header",
      { class: "series-head" },
      h("h2", { id: "series-title" }, personName(s.PatientName)),
      h(
        "p",
        { class: "series-sub" },
        h("span", { class: "modality" }, s.Modality || "?"),
        ` ${s.SeriesDescription || "(no description)"} · ${s.StudyDescription || "(no study description)"} · ${dicomDate(s.StudyDate) || "no date"}`,
      ),
    ),
    imagesCard(s),
    h(
      "div",
      { class: "detail-grid" },
      h(
        "section",
        { class: "card" },
        h("h3", {}, "Patient"),
        fields([
          ["Name", personName(s.PatientName)],
          ["Patient ID", s.PatientID],
          ["Issuer of ID", s.IssuerOfPatientID],
          ["Other IDs", s.OtherPatientIDs],
          ["Birth date", dicomDate(s.PatientBirthDate)],
          ["Sex", sex(s.PatientSex)],
          ["SA ID", s.sa_id ? h("span", { id: "series-sa-id" }, saId(s.sa_id), " ", qualityBadge(s.sa_id_issues, { id: "series-dq" })) : ""],
          ...(s.study_uid_shared ? [["Check", h("span", { class: "badge dq study-shared", id: "series-study-shared" }, "⚠ The same StudyInstanceUID is filed under another patient too")]] : []),
          ...(s.sa_id_issues ? [["Check", h("ul", { class: "dq-list", id: "series-dq-text" }, saIdIssues(s.sa_id_issues).map((t) => h("li", {}, t)))]] : []),
          ["Medical aid", s.medical_aid ? h("span", { class: "chip aid" }, s.medical_aid) : ""],
        ]),
      ),
      h(
        "section",
        { class: "card" },
        h("h3", {}, "Study"),
        fields([
          ["Date and time", `${dicomDate(s.StudyDate)} ${dicomTime(s.StudyTime)}`.trim()],
          ["Description", s.StudyDescription],
          ["Accession", s.AccessionNumber],
          ["Study ID", s.StudyID],
          ["Referring", s.ReferringPhysicianName ? personName(s.ReferringPhysicianName) : ""],
          ["Institution", s.InstitutionName],
          ["Hospital", hospitalName(s.hospital, s.hospital_group)],
        ]),
      ),
      h(
        "section",
        { class: "card" },
        h("h3", {}, "Series"),
        fields([
          ["Number", s.SeriesNumber],
          ["Modality", s.Modality],
          ["Description", s.SeriesDescription],
          ["Body part", s.BodyPartExamined],
          ["Series date", dicomDate(s.SeriesDate)],
          ["Equipment", [s.Manufacturer, s.StationName].filter(Boolean).join(" · ")],
          ["Images", s.filling ? h("span", {}, `${count(s.file_count)} so far (${bytes(s.total_size)}) `, h("span", { class: "badge filling", id: "series-filling" }, "Still being indexed")) : `${count(s.file_count)} (${bytes(s.total_size)})`],
        ]),
      ),
    ),
    technical(
      [
        ["Study UID", s.StudyInstanceUID],
        ["Series UID", s.SeriesInstanceUID],
        ["SeriesKey", s.SeriesKey],
      ],
      h("h3", { class: "files-title" }, `Files (${count(s.files.length)})`),
      filesBox,
    ),
  );
  focusHeading(container);
  mountOrthancCard(container, s.SeriesKey);
}

// The series' middle image (drawn by the server, cached in its data directory) and the way into the viewer.
function imagesCard(s) {
  const viewer = `/viewer/${encodeURIComponent(s.SeriesKey)}`;
  return h(
    "section",
    { class: "card images-card" },
    h("a", { href: viewer, class: "thumb-link", title: "Open in the viewer" }, h("img", { src: `/api/series/${encodeURIComponent(s.SeriesKey)}/thumbnail`, alt: "Middle image of the series", class: "series-thumb", id: "series-thumb", width: 160, height: 160, loading: "lazy" })),
    h("div", {}, h("h3", {}, "Images"), h("a", { href: viewer, class: "button primary", id: "open-viewer" }, "Open in the viewer")),
  );
}

// The folder the files share, if they all share one: shown once, so the table lists just the names.
function commonFolder(files) {
  const folderOf = (p) => p.slice(0, Math.max(p.lastIndexOf("/"), p.lastIndexOf("\\")) + 1);
  if (!files.length) return "";
  const first = folderOf(files[0].path);
  return first && files.every((f) => folderOf(f.path) === first) ? first : "";
}

function showFiles(box, files, limit) {
  const shown = files.slice(0, limit);
  const folder = commonFolder(files);
  const table = h(
    "table",
    { class: "files-table" },
    h(
      "thead",
      {},
      h("tr", {}, h("th", { scope: "col", class: "num" }, "Instance"), h("th", { scope: "col" }, folder ? "File" : "Path"), h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col" }, "Transfer syntax")),
    ),
    h(
      "tbody",
      {},
      shown.map((f) =>
        h(
          "tr",
          {},
          h("td", { class: "num" }, f.InstanceNumber ?? "–"),
          h("td", { class: "path" }, folder ? f.path.slice(folder.length) : f.path),
          h("td", { class: "num" }, bytes(f.size)),
          h("td", {}, transferSyntax(f.TransferSyntaxUID)),
        ),
      ),
    ),
  );
  const rest = files.length - shown.length;
  const more = rest > 0 ? h("button", { type: "button", class: "more", onclick: () => showFiles(box, files, files.length) }, `Show all ${count(files.length)} files`) : null;
  const where = folder ? h("p", { class: "folder" }, h("span", { class: "label" }, "Folder "), h("span", { class: "path", id: "series-folder" }, folder)) : null;
  replace(box, where, h("div", { class: "table-wrap" }, table), more);
}
