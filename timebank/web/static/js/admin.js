// An admin's tasks on the dashboard: invite a member (the one-time link shown to
// copy, emailed when the service can), set an account's limits or freeze it,
// create an API client (its secret shown once).

import * as api from "./api.js";
import { h, mount } from "./dom.js";
import { parseAmount } from "./format.js";
import { t } from "./i18n.js";
import { field, say, select } from "./ui.js";

const ROLES = ["member", "treasurer", "admin"];
const SCOPES = ["accounts:read", "transactions:read", "transactions:write", "members:read", "audit:read", "webhooks:manage"];

// Runs a task, saying what came of it; the form is kept for the next one.
async function attempt(work, done) {
  try {
    say(done(await work()));
  } catch (error) {
    say(t("error", { code: error.code || error.message }));
  }
}

// The link to hand over: shown to copy (closed networks), said whether emailed.
function invitedResult(made) {
  if (made.has_password) return h("p", {}, t("invited_has_password", { name: made.display_name }));
  const link = h("input", { id: "invite-link", readonly: true, value: made.link, class: "link-field" });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(made.link);
      say(t("link_copied"));
    } catch {
      link.select();
      say(t("link_copy_by_hand"));
    }
  };
  return [
    h("p", {}, made.email_sent ? t("invited_emailed", { name: made.display_name, email: made.email }) : t("invited_not_emailed", { name: made.display_name })),
    field("invite-link", t("invite_link"), link),
    h("button", { type: "button", onclick: copy }, t("copy_link")),
  ];
}

// The latest invitations with their state; a pending one can be revoked.
function invitationList(slug) {
  const list = h("div", { id: "invitations" });
  const show = async () => {
    try {
      const page = await api.get(`/v1/communities/${slug}/invitations`);
      const revoke = (item) => () =>
        attempt(async () => {
          await api.call("DELETE", `/v1/communities/${slug}/invitations/${item.id}`);
          await show();
        }, () => t("invitation_cancelled", { name: item.display_name }));
      mount(list, page.items.length
        ? h("ul", { class: "plain" }, page.items.map((item) =>
            h("li", { class: "card" },
              h("p", {}, `${item.display_name} · ${item.email}`),
              h("p", { class: "small" }, t(`invitation_${item.state}`)),
              item.state === "pending"
                ? h("button", { type: "button", onclick: revoke(item), "aria-label": t("revoke_invitation_of", { name: item.display_name }) }, t("cancel_invitation"))
                : null)))
        : h("p", {}, t("no_invitations")));
    } catch (error) {
      mount(list, h("p", { class: "error" }, t("error", { code: error.code || error.message })));
    }
  };
  show();
  return { list, show };
}

function invite(slug) {
  const shown = h("div", { "aria-live": "polite", id: "invite-result" });
  const invitations = invitationList(slug);
  const submit = (event) => {
    event.preventDefault();
    const form = event.target.elements;
    const body = { email: form["invite-email"].value.trim(), display_name: form["invite-name"].value.trim(), role: form["invite-role"].value };
    attempt(async () => {
      const made = (await api.call("POST", `/v1/communities/${slug}/invitations`, body)).body;
      mount(shown, invitedResult(made));
      await invitations.show();
    }, () => t("invited", { name: body.display_name }));
  };
  return h("div", {},
    h("form", { onsubmit: submit, "aria-labelledby": "invite-title" },
      h("h3", { id: "invite-title" }, t("invite")),
      field("invite-email", t("email"), h("input", { id: "invite-email", type: "email", required: true, autocomplete: "off" })),
      field("invite-name", t("name"), h("input", { id: "invite-name", required: true, maxlength: 100, autocomplete: "off" })),
      field("invite-role", t("role"), select("invite-role", ROLES.map((r) => [r, t(`role_${r}`)]), "member")),
      h("button", { type: "submit" }, t("invite"))),
    shown,
    h("h3", { id: "invitations-title" }, t("invitations")),
    invitations.list);
}

// An amount typed in the unit's own terms: whole hours for time, else the currency.
function typedAmount(text, unit) {
  if (unit.kind === "time") return /^\s*\d{1,6}\s*$/.test(text) ? Number(text) * 60 : null;
  return parseAmount(text, unit.decimals);
}

function limits(context, unitOf) {
  const accounts = context.members.flatMap((member) =>
    member.accounts.map((account) => [account.id, `${member.display_name} · ${unitOf(account.unit)?.name || account.unit}`, account.unit]));
  if (!accounts.length) return null;
  const unitOfChoice = (id) => unitOf(accounts.find(([accountId]) => accountId === id)[2]);
  const patch = (form, body, done) =>
    attempt(() => api.call("PATCH", `/v1/accounts/${form["limits-account"].value}`, body), () => done);
  const setLimits = (event) => {
    event.preventDefault();
    const form = event.target.elements;
    const unit = unitOfChoice(form["limits-account"].value);
    const owe = typedAmount(form["limits-owe"].value, unit);
    const hold = typedAmount(form["limits-hold"].value, unit);
    if (owe === null || hold === null) return say(t("choose_amount"));
    patch(form, { min_balance: -owe, max_balance: hold }, t("limits_set"));
  };
  const status = (value, done) => (event) => patch(event.target.form.elements, { status: value }, done);
  return h("form", { onsubmit: setLimits, "aria-labelledby": "limits-title" },
    h("h3", { id: "limits-title" }, t("account_limits")),
    field("limits-account", t("account"), select("limits-account", accounts.map(([id, label]) => [id, label]), accounts[0][0])),
    field("limits-owe", t("may_owe"), h("input", { id: "limits-owe", inputmode: "decimal", autocomplete: "off" })),
    field("limits-hold", t("may_hold"), h("input", { id: "limits-hold", inputmode: "decimal", autocomplete: "off" })),
    h("p", { class: "small" }, t("limits_hint")),
    h("div", { class: "actions" },
      h("button", { type: "submit" }, t("set_limits")),
      h("button", { type: "button", onclick: status("frozen", t("frozen")) }, t("freeze")),
      h("button", { type: "button", onclick: status("active", t("unfrozen")) }, t("unfreeze"))));
}

function client(slug) {
  const shown = h("div", { "aria-live": "polite" });
  const submit = (event) => {
    event.preventDefault();
    const form = event.target;
    const scopes = SCOPES.filter((scope) => form.querySelector(`input[value="${scope}"]`).checked);
    const name = form.elements["client-name"].value.trim();
    attempt(async () => {
      const made = (await api.call("POST", `/v1/communities/${slug}/clients`, { name, scopes })).body;
      mount(shown,
        h("p", {}, t("client_made")),
        h("p", { class: "small link" }, `client_id: ${made.client_id}`),
        h("p", { class: "small link" }, `client_secret: ${made.client_secret}`));
    }, () => t("client_made"));
  };
  return h("form", { onsubmit: submit, "aria-labelledby": "client-title" },
    h("h3", { id: "client-title" }, t("new_client")),
    field("client-name", t("name"), h("input", { id: "client-name", required: true, maxlength: 100, autocomplete: "off" })),
    h("fieldset", {}, h("legend", {}, t("scopes")),
      SCOPES.map((scope) => h("label", { class: "choice" }, h("input", { type: "checkbox", name: "scope", value: scope }), scope))),
    h("button", { type: "submit" }, t("create_client")),
    shown);
}

export function adminSection(context, unitOf) {
  const slug = context.membership.community;
  return h("section", { "aria-labelledby": "admin" },
    h("h2", { id: "admin" }, t("admin_tasks")),
    invite(slug),
    limits(context, unitOf),
    client(slug));
}
