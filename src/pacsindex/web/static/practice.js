// The practice's details (name, address, phone) that share recipients see on a link's page and in the
// message sent with it: a card on the admin page, saved with PUT /api/settings/practice.

import { api } from "./api.js";
import { h, notice, replace } from "./dom.js";

const FIELDS = [
  ["name", "Practice name", 120],
  ["address", "Address", 300],
  ["phone", "Phone", 40],
];

export function practiceCard() {
  const said = h("div", { id: "practice-said", "aria-live": "polite" });
  const inputs = Object.fromEntries(
    // Disabled until the saved values are in, so nothing typed is overwritten by them.
    FIELDS.map(([key, , max]) => [key, h("input", { id: `practice-${key}`, type: "text", maxlength: String(max), size: "40", disabled: true })]),
  );
  const save = h("button", { type: "submit", class: "primary", id: "practice-save", disabled: true }, "Save");
  const form = h(
    "form",
    { class: "stacked", id: "practice-form" },
    FIELDS.map(([key, label]) => [h("label", { for: `practice-${key}` }, label), inputs[key]]),
    save,
    said,
  );
  api("/api/settings/practice")
    .then((values) => {
      for (const [key] of FIELDS) {
        inputs[key].value = values[key] || "";
        inputs[key].disabled = false;
      }
      save.disabled = false;
    })
    .catch((err) => replace(said, notice(err.message, "error")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      const body = Object.fromEntries(FIELDS.map(([key]) => [key, inputs[key].value]));
      await api("/api/settings/practice", { method: "PUT", body });
      replace(said, notice("Saved: share recipients see these details.", "success"));
    } catch (err) {
      replace(said, notice(err.message, "error"));
    } finally {
      save.disabled = false;
    }
  });
  return h(
    "section",
    { class: "card", id: "practice-card", "aria-labelledby": "practice-title" },
    h("h3", { id: "practice-title" }, "Practice details (shown to share recipients)"),
    form,
  );
}
