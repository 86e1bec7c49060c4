// Solidarity pools: each pool's purpose and public statement, giving to it, asking it
// for help and following one's requests; for its managers, the open requests to
// approve or decline, each decision signed on this device. Loaded only when opened.

import * as api from "./api.js";
import { signedPoolDecision } from "./crypto.js";
import { h } from "./dom.js";
import { formatDate } from "./format.js";
import { language, t } from "./i18n.js";
import { amountFields, readAmount, uuid4 } from "./record.js";
import { amountText, context, ledgerOrigin, ownAccountFor, registeredKey, unitOf } from "./session.js";
import { button, field, heading, say } from "./ui.js";

const STATEMENT_LINES = 10;
const REQUESTS_READ = 50;

const base = (pool) => `/v1/communities/${context.membership.community}/pools/${pool.id}`;

function statementSection(pool, statements) {
  return pool.units.map((unit, index) => {
    const lines = statements[index].lines;
    return h("div", {},
      h("p", {}, t("pool_balance", { amount: amountText(unit.balance, unit.unit) })),
      lines.length
        ? h("ol", { class: "plain", "aria-label": t("pool_statement") }, lines.map((line) =>
            h("li", { class: "entry" },
              h("span", {}, h("span", { class: "small" }, formatDate(line.posted_at, language())), h("br"),
                line.counterparty || t(line.amount > 0 ? "pool_in" : "pool_out")),
              h("strong", { class: line.amount < 0 ? "out" : "in" },
                (line.amount > 0 ? "+" : "") + amountText(line.amount, unit.unit)))))
        : h("p", { class: "small" }, t("pool_empty")));
  });
}

// Giving and asking share one shape: an amount of one of the pool's units, a note.
function amountForm(pool, prefix, submitLabel, noteLabel, send) {
  const units = pool.units.filter((unit) => ownAccountFor(unit.unit));
  if (!units.length) return null;
  const unit = unitOf(units[0].unit);
  return h("form", {
    novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      const amount = readAmount(event.target, unit, prefix);
      if (!amount) return say(t("choose_amount"));
      await send(unit.code, amount, event.target.elements[`${prefix}note`].value.trim());
    },
  },
  amountFields(unit, prefix),
  field(`${prefix}note`, noteLabel, h("input", { id: `${prefix}note`, name: `${prefix}note`, maxlength: 500, autocomplete: "off" })),
  h("button", { type: "submit", class: "primary wide" }, submitLabel));
}

function myRequest(pool, request, app) {
  return h("li", { class: "card" },
    h("p", {}, `${amountText(request.amount, request.unit)} · ${t(`request_${request.state}`)}`),
    request.reason ? h("p", { class: "small" }, request.reason) : null,
    request.state === "open"
      ? button(t("withdraw"), () => app.act(
          () => api.call("POST", `${base(pool)}/requests/${request.id}/withdraw`), t("withdrawn")))
      : null);
}

async function decide(pool, request, decision) {
  const signed = await signedPoolDecision(await registeredKey(), {
    ledger: await ledgerOrigin(),
    requestId: request.id,
    decision,
  });
  await api.call("POST", `${base(pool)}/requests/${request.id}/decisions`, { decision, signed });
}

function requestToDecide(pool, request, app) {
  const decided = request.decisions.some((d) => d.manager === context.membership.party_id);
  const who = request.beneficiary_name;
  return h("li", { class: "card" },
    h("p", {}, t("asks", { name: who, amount: amountText(request.amount, request.unit) })),
    request.reason ? h("p", { class: "small" }, request.reason) : null,
    h("p", { class: "small" }, t("approvals", { count: request.decisions.filter((d) => d.decision === "approve").length, needed: pool.approvals_required })),
    decided
      ? h("p", { class: "small" }, t("you_decided"))
      : h("div", { class: "actions" },
          button(t("approve"), () => app.act(() => decide(pool, request, "approve"), t("approved")), "primary"),
          button(t("decline"), () => app.act(() => decide(pool, request, "decline"), t("declined")))));
}

async function poolSection(pool, app) {
  const me = context.membership.party_id;
  const manages = pool.managers.includes(me);
  const [statements, requests] = await Promise.all([
    Promise.all(pool.units.map((unit) =>
      api.get(`${base(pool)}/statement?unit=${encodeURIComponent(unit.unit)}&limit=${STATEMENT_LINES}`))),
    api.get(`${base(pool)}/requests?limit=${REQUESTS_READ}`),
  ]);
  const mine = requests.items.filter((r) => r.beneficiary === me);
  const open = manages ? requests.items.filter((r) => r.state === "open" && r.beneficiary !== me) : [];
  const id = `pool-${pool.id}`;
  const give = amountForm(pool, `give-${pool.id}-`, t("give"), t("memo"), (unit, amount, memo) =>
    app.act(() => api.call("POST", `${base(pool)}/donations`,
      { id: uuid4(), from: ownAccountFor(unit), unit, amount, memo }), t("given")));
  const ask = amountForm(pool, `ask-${pool.id}-`, t("ask"), t("reason"), (unit, amount, reason) =>
    app.act(() => api.call("POST", `${base(pool)}/requests`, { id: uuid4(), unit, amount, reason }), t("asked")));
  return h("section", { "aria-labelledby": id, class: "pool" },
    h("h2", { id }, pool.name),
    h("p", {}, pool.purpose),
    statementSection(pool, statements),
    manages
      ? [h("h3", {}, t("to_decide")),
          open.length ? h("ul", { class: "plain" }, open.map((r) => requestToDecide(pool, r, app))) : h("p", {}, t("nothing_waiting"))]
      : null,
    h("h3", {}, t("give_title")), give,
    h("h3", {}, t("ask_title")), ask,
    mine.length ? [h("h3", {}, t("my_requests")), h("ul", { class: "plain" }, mine.map((r) => myRequest(pool, r, app)))] : null);
}

export async function poolsScreen(app) {
  const slug = context.membership.community;
  const pools = (await api.get(`/v1/communities/${slug}/pools`)).items;
  return [
    heading(t("pools")),
    pools.length ? await Promise.all(pools.map((pool) => poolSection(pool, app))) : h("p", {}, t("no_pools")),
  ];
}
