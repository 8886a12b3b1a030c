// Access reports (POPIA s23) for admins: find a patient by name or ID, then download every access to
// their records as CSV or PDF; and the audit log for a date range as CSV. A self-contained block:
// `accessReportsCard(ctx)` gives a card to place on an admin page. Downloads are plain links (GET, same
// origin, the session cookie goes along), so the browser saves the file.

import { api, ApiError, query } from "./api.js";
import { h, replace } from "./dom.js";
import { dicomDate, personName } from "./format.js";

export function accessReportsCard(ctx) {
  const q = h("input", { id: "report-patient", maxlength: "200", placeholder: "name or patient ID", autocomplete: "off" });
  const found = h("div", { id: "report-patients" });
  const form = h("form", { class: "inline-form" }, h("label", { for: "report-patient" }, "Patient"), q,
    h("button", { type: "submit" }, "Find"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const patients = await api("/api/reports/patients", { params: { q: q.value } });
      replace(found, patients.length ? h("ul", { class: "report-patients" }, patients.map(row)) : h("p", {}, "No patient found."));
    } catch (err) {
      replace(found, h("p", { class: "panel-message error" }, err instanceof ApiError ? err.message : String(err)));
    }
  });

  function row(p) {
    const params = { patient_id: p.PatientID, name: p.PatientID ? "" : p.PatientName };
    const link = (format, label) =>
      h("a", { href: `/api/reports/access${query({ ...params, format })}`, download: "" }, label);
    return h("li", {}, `${personName(p.PatientName)} (${p.PatientID || "no ID"}, born ${dicomDate(p.PatientBirthDate) || "?"}): `,
      link("pdf", "PDF report"), " · ", link("csv", "CSV"));
  }

  const from = h("input", { id: "export-from", type: "date", "aria-label": "From" });
  const to = h("input", { id: "export-to", type: "date", "aria-label": "To" });
  const exportLink = h("a", { id: "export-link", download: "" }, "Download the audit log (CSV)");
  const setLink = () => {
    exportLink.href = `/api/reports/audit.csv${query({ date_from: from.value, date_to: to.value })}`;
  };
  from.addEventListener("change", setLink);
  to.addEventListener("change", setLink);
  setLink();

  return h("section", { class: "card", id: "access-reports" },
    h("h3", {}, "Access reports (POPIA)"),
    h("p", { class: "muted" }, "Everyone who found, opened, shared, downloaded or sent a patient's images, with time and address."),
    form, found,
    h("h3", {}, "Audit export"),
    h("div", { class: "inline-form" }, from, to, exportLink));
}
