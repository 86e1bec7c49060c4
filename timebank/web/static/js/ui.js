// Small pieces every screen uses: headings, buttons, fields, the status line.

import * as api from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

const status = document.getElementById("status");
// Said on the next screen shown (e.g. "Recorded." on the home screen).
let flash = "";

export function setFlash(text) {
  flash = text;
}

export function takeFlash() {
  const text = flash;
  flash = "";
  return text;
}

export function say(text) {
  status.textContent = text;
}

export function heading(text) {
  return h("h1", { tabindex: "-1", id: "title" }, text);
}

export function button(label, onclick, kind = "") {
  return h("button", { type: "button", class: kind, onclick }, label);
}

export function field(id, label, control, hint) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint || null);
}

export function select(id, options, value) {
  return h(
    "select",
    { id, name: id },
    options.map(([optionValue, text]) =>
      h("option", { value: optionValue, selected: String(optionValue) === String(value) }, text),
    ),
  );
}

export function errorText(error) {
  if (error instanceof api.NetworkError) return t("offline_now");
  return t("error", { code: error.code || error.message });
}
