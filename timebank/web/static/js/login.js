// Logging in with an email and a password.

import * as api from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { field, heading, say } from "./ui.js";

export function loginScreen(app) {
  const submit = async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await api.login(form.elements.email.value.trim(), form.elements.password.value);
      await app.go("home");
    } catch (error) {
      say(error.code === "rate_limited" ? t("too_many") : error instanceof api.NetworkError ? t("offline_now") : t("login_failed"));
    }
  };
  return [
    heading(t("login_title")),
    h("form", { onsubmit: submit },
      field("email", t("email"), h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true })),
      field("password", t("password"), h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true })),
      h("button", { type: "submit", class: "primary wide" }, t("login"))),
  ];
}

// --- frame, routing and the outbox ------------------------------------------------------------

// Treasurers and admins read the whole community.
