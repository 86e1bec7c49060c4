// Logging in with an email and a password.

import * as api from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { forgetContext } from "./session.js";
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

const PASSWORD_LENGTH_MIN = 10;

// An invited person's first visit, from the link: they choose their password
// (twice, to catch a typing slip) and are logged in.
export function welcomeScreen(app, query) {
  const token = query.get("token") || "";
  const submit = async (event) => {
    event.preventDefault();
    const form = event.target.elements;
    const password = form["new-password"].value;
    if (password.length < PASSWORD_LENGTH_MIN) return say(t("password_short", { count: PASSWORD_LENGTH_MIN }));
    if (password !== form["new-password-again"].value) return say(t("passwords_differ"));
    try {
      // A phone shared with someone logged in: they leave first.
      if (api.loggedIn()) await api.logout();
      forgetContext();
      await api.acceptInvitation(token, password);
    } catch (error) {
      if (error instanceof api.NetworkError) return say(t("offline_now"));
      return say(error.code === "invitation_invalid" ? t("invitation_invalid") : t("error", { code: error.code }));
    }
    history.replaceState(null, "", "/#/home");
    await app.start();
  };
  const hint = h("p", { id: "new-password-hint", class: "small" }, t("password_hint", { count: PASSWORD_LENGTH_MIN }));
  return [
    heading(t("welcome_title")),
    h("p", {}, t("welcome_text")),
    h("form", { onsubmit: submit, novalidate: true },
      field("new-password", t("new_password"), h("input", { id: "new-password", name: "new-password", type: "password", autocomplete: "new-password", required: true, minlength: PASSWORD_LENGTH_MIN, "aria-describedby": "new-password-hint" }), hint),
      field("new-password-again", t("new_password_again"), h("input", { id: "new-password-again", name: "new-password-again", type: "password", autocomplete: "new-password", required: true })),
      h("button", { type: "submit", class: "primary wide" }, t("welcome_go"))),
  ];
}
