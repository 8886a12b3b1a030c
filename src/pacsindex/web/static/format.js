// How DICOM values and times read on screen: names as "FAMILY, Given", dates as YYYY-MM-DD, times in the
// practice's time zone (Africa/Johannesburg unless the settings say otherwise); South African ID numbers as
// printed on the ID ("800101 5009 087"), their data-quality flags as sentences, hospitals with their group.

import { h } from "./dom.js";

const TRANSFER_SYNTAXES = {
  "1.2.840.10008.1.2": "Implicit VR Little Endian",
  "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline",
  "1.2.840.10008.1.2.4.51": "JPEG Extended",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Near-lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
  "1.2.840.10008.1.2.5": "RLE Lossless",
};

const SEX = { M: "Male", F: "Female", O: "Other" };

// "MÜLLER^HANS" → "MÜLLER, Hans"; "SMITH^K^^DR" → "DR SMITH, K". Only the first (alphabetic) group; never a "^".
// The family name stays as written (that is how reception files it); given names written all in capitals
// are put in their usual case where that is safe: words of letters (and - or ') longer than two letters,
// so initials such as "JP" stay as they are.
export function personName(value) {
  if (!value) return "(no name)";
  const [family = "", given = "", middle = "", prefix = "", suffix = ""] = value.split("=")[0].split("^").map((p) => p.trim());
  // "DR^PATEL": a title typed where the family name goes, and the family name after it. Read it as written.
  if (TITLES.has(family.toUpperCase()) && given && !middle && !prefix && !suffix) return `${family} ${given}`;
  const first = [given, middle].filter(Boolean).map(givenCase).join(" ");
  const name = [prefix, family].filter(Boolean).join(" ") + (first ? `, ${first}` : "") + (suffix ? ` ${suffix}` : "");
  return name.trim() || value.replaceAll("^", " ").trim() || "(no name)";
}

const TITLES = new Set(["DR", "DR.", "PROF", "PROF.", "MR", "MRS", "MS", "MISS"]);
// Latin script only: Greek capitals, for one, drop the accents that lower case would need.
const WORD = /^[\p{Script=Latin}'’-]+$/u;

function givenCase(text) {
  if (text !== text.toLocaleUpperCase() || text === text.toLocaleLowerCase()) return text; // mixed case already, or no letters
  return text
    .split(/\s+/)
    .map((word) => (word.length > 2 && WORD.test(word) ? word.toLocaleLowerCase().replace(/(^|[-'’])(\p{L})/gu, (_, sep, ch) => sep + ch.toLocaleUpperCase()) : word))
    .join(" ");
}

// "CT CHEST" for a study described "CHEST" with CT in it; just "MR PROSTATE" when the description says so.
export function studyLabel(modalities, description) {
  const text = (description || "").trim();
  const said = (m) => text.toUpperCase().split(/\s+/).includes(m.toUpperCase());
  return [...(modalities || []).filter((m) => m && !said(m)), text].filter(Boolean).join(" ") || "(no description)";
}

// "62 y · Male": what reception says about the patient at a glance.
export function ageSex(age, patientSex) {
  return [age, sex(patientSex)].filter(Boolean).join(" · ");
}

export function dicomDate(value) {
  if (!value) return "";
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(value.trim());
  return m ? `${m[1]}-${m[2]}-${m[3]}` : value;
}

export function dicomTime(value) {
  if (!value) return "";
  const m = /^(\d{2})(\d{2})?(\d{2})?/.exec(value.trim());
  if (!m) return value;
  return [m[1], m[2] || "00", m[3]].filter(Boolean).join(":");
}

export function sex(value) {
  return SEX[value] || value || "";
}

export function transferSyntax(uid) {
  return TRANSFER_SYNTAXES[uid] || uid || "";
}

export function count(n) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-ZA");
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toLocaleString("en-ZA", { maximumFractionDigits: unit ? 1 : 0 })} ${units[unit]}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

function formatter(timeZone, options) {
  try {
    return new Intl.DateTimeFormat("en-ZA", { timeZone, hourCycle: "h23", ...options });
  } catch {
    return new Intl.DateTimeFormat("en-ZA", { hourCycle: "h23", ...options });
  }
}

// An ISO 8601 time with an offset → "14:05:09 SAST" in the given zone.
export function clockTime(iso, timeZone) {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return formatter(timeZone, { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" }).format(date);
}

// An ISO 8601 time → "2024-06-01 14:05" in the given zone.
export function dateTime(iso, timeZone) {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const parts = Object.fromEntries(
    formatter(timeZone, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

export function plural(n, one, many = `${one}s`) {
  return `${count(n)} ${n === 1 ? one : many}`;
}

// -- South African fields --------------------------------------------------------------------------------

// "8001015009087" → "800101 5009 087": date of birth, sequence, the last three digits.
export function saId(number) {
  const digits = String(number || "").replace(/\D/g, "");
  return digits.length === 13 ? `${digits.slice(0, 6)} ${digits.slice(6, 10)} ${digits.slice(10)}` : number || "";
}

// The index's flags ("birth date 19810203 in the header, 19800101 from the SA ID number; sex F in the header,
// M from the SA ID number") as sentences: "SA ID says born 1980-01-01, header says 1981-02-03".
export function saIdIssues(text) {
  if (!text) return [];
  return text
    .split(";")
    .map((issue) => issue.trim())
    .filter(Boolean)
    .map((issue) => {
      let m = /^birth date (\d{8}) in the header, (\d{8}) from the SA ID number$/.exec(issue);
      if (m) return `SA ID says born ${dicomDate(m[2])}, header says ${dicomDate(m[1])}`;
      m = /^sex (\w+) in the header, (\w+) from the SA ID number$/.exec(issue);
      if (m) return `SA ID says ${sex(m[2]).toLowerCase()}, header says ${sex(m[1]).toLowerCase()}`;
      return issue;
    });
}

// A warning badge when the header disagrees with the SA ID number; its tooltip says where.
export function qualityBadge(issuesText, attrs = {}) {
  const issues = saIdIssues(issuesText);
  if (!issues.length) return null;
  const text = issues.join("; ");
  return h("span", { class: "badge dq", title: text, "aria-label": `Check the ID: ${text}`, ...attrs }, "⚠ SA ID mismatch");
}

// "Netcare Milpark Hospital · Netcare"; just the name when it has no group (or is its own group).
export function hospitalName(name, group) {
  if (!name) return group || "";
  return group && group !== name ? `${name} · ${group}` : name;
}
