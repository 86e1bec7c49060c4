// The home screen: balances, the exchanges waiting for an answer (the member's or
// the other person's), and what is not sent yet.

import * as api from "./api.js";
import { signedAck, signedIntent } from "./crypto.js";
import { h } from "./dom.js";
import { formatAmount } from "./format.js";
import { categories, language, t } from "./i18n.js";
import * as outbox from "./outbox.js";
import {
  amountText,
  audits,
  context,
  freshBalances,
  ledgerOrigin,
  nameOfAccount,
  ownAccountFor,
  ownAccounts,
  prepareSigning,
  registeredKey,
  unitOf,
} from "./session.js";
import { button, heading } from "./ui.js";

const PENDING_PAGE_SIZE = 50;

async function pendingExchanges() {
  const slug = context.membership.community;
  const seen = new Map();
  const pages = await Promise.all(
    ownAccounts().map((account) =>
      api.get(
        `/v1/communities/${slug}/transactions?account=${account.id}&state=pending&limit=${PENDING_PAGE_SIZE}`,
      ),
    ),
  );
  for (const item of pages.flatMap((page) => page.items)) seen.set(item.id, item);
  const details = await Promise.all(
    [...seen.keys()].map((id) => api.get(`/v1/transactions/${id}?community=${slug}`)),
  );
  const mine = new Set(ownAccounts().map((account) => account.id));
  return details.map((transaction) => describePending(transaction, mine));
}

function describePending(transaction, mine) {
  const own = transaction.postings.find((posting) => mine.has(posting.account));
  const other = transaction.postings.find((posting) => !mine.has(posting.account));
  const intent = transaction.signatures.find((s) => s.purpose === "intent");
  const payee = own.amount > 0;
  // A payer's signed intent waits for the payee; a payee's proposal waits for the payer.
  const mineToAnswer = payee === Boolean(intent);
  const unitCode = ownAccounts().find((account) => account.id === own.account).unit;
  const unit = unitOf(unitCode);
  return {
    transaction,
    intent,
    payee,
    unit: unitCode,
    mineToAnswer,
    // The service names who holds each account, in or out of the directory's first page.
    name: other ? other.owner?.display_name || nameOfAccount(other.account) : "?",
    amount: formatAmount(Math.abs(own.amount), unit, language()),
  };
}

// The payer confirms what the payee proposed by signing the amount the proposal
// was made for, which the service keeps and shows (intent_amount): with a pool's
// levy the legs alone do not say it. A proposal without it cannot be signed here.
async function confirmSigned(pending, path) {
  const { id, postings, memo, intent_amount: amount } = pending.transaction;
  if (!amount) throw new api.ApiError(422, { code: "intent_mismatch" });
  const [payer, payee] = postings;
  const fields = { id, from: payer.account, to: payee.account, unit: pending.unit, amount, memo, ledger: await ledgerOrigin() };
  return api.call("POST", path, { signed: await signedIntent(await registeredKey(), fields) });
}

async function answer(pending, decision) {
  const id = pending.transaction.id;
  const slug = context.membership.community;
  let body = {};
  if (pending.payee && pending.intent) {
    const key = await registeredKey();
    body = {
      signed: await signedAck(key, {
        ledger: await ledgerOrigin(),
        id,
        intent: pending.intent.signed,
        decision,
      }),
    };
  }
  const action = decision === "accept" ? "confirm" : "void";
  const path = `/v1/transactions/${id}/${action}?community=${slug}`;
  // The payer confirms what the payee proposed: this device signs the intent.
  if (!pending.payee && !pending.intent && decision === "accept") return confirmSigned(pending, path);
  await api.call("POST", path, body);
}

function pendingItem(pending, app) {
  // The payee is the one who helped: the hours go to them.
  const key = pending.mineToAnswer
    ? pending.payee
      ? "you_helped"
      : "helped_you"
    : pending.payee
      ? "you_asked_you_helped"
      : "you_asked_helped";
  const controls = pending.mineToAnswer
    ? [
        button(t("confirm"), () => app.act(() => answer(pending, "accept"), t("confirmed")), "primary"),
        button(t("decline"), () => app.act(() => answer(pending, "decline"), t("declined"))),
      ]
    : [button(t("withdraw"), () => app.act(() => answer(pending, "decline"), t("withdrawn")))];
  const { memo, category } = pending.transaction;
  const about = [categories()[category] || category, memo].filter(Boolean).join(" · ");
  return h(
    "li",
    { class: "card" },
    h("p", {}, t(key, { name: pending.name, amount: pending.amount })),
    about ? h("p", { class: "small" }, about) : null,
    h("div", { class: "actions" }, controls),
  );
}

function outboxItem(item, app) {
  const body = item.body;
  return h(
    "li",
    { class: "card" },
    h("p", {}, `${nameOfAccount(body.from === ownAccountFor(body.unit) ? body.to : body.from)} · ${amountText(body.amount, body.unit)}`),
    item.error
      ? [
          h("p", { class: "error" }, t("refused", { code: item.error })),
          button(t("remove"), () => app.act(() => outbox.discard(item.id), "")),
        ]
      : null,
  );
}

function balanceCard(account) {
  return h(
    "li",
    { class: "balance" },
    h("span", { class: "unit" }, unitOf(account.unit)?.name || account.unit),
    h("strong", {}, amountText(account.balance, account.unit)),
    account.available !== account.balance
      ? h("span", { class: "small" }, t("available", { amount: amountText(account.available, account.unit) }))
      : null,
  );
}

export async function homeScreen(app) {
  // The first visit on a device makes its signing key and registers it.
  prepareSigning();
  await freshBalances();
  const waiting = await outbox.waiting();
  let pending = [];
  try {
    pending = await pendingExchanges();
  } catch (error) {
    if (!(error instanceof api.NetworkError)) throw error;
  }
  const forYou = pending.filter((p) => p.mineToAnswer);
  const forThem = pending.filter((p) => !p.mineToAnswer);
  return [
    heading(t("hello", { name: context.me.display_name })),
    h("section", { "aria-labelledby": "balances" },
      h("h2", { id: "balances" }, t("balances")),
      h("ul", { class: "plain balances" }, ownAccounts().map(balanceCard))),
    h("a", { href: "#/record", class: "button primary wide" }, t("record_title")),
    h("div", { class: "actions" },
      h("a", { href: "#/pay", class: "button" }, t("pay_title")),
      h("a", { href: "#/pools", class: "button" }, t("pools"))),
    audits() ? h("a", { href: "#/audit", class: "button wide" }, t("open_audit")) : null,
    h("section", { "aria-labelledby": "for-you" },
      h("h2", { id: "for-you" }, t("for_you")),
      forYou.length ? h("ul", { class: "plain" }, forYou.map((p) => pendingItem(p, app))) : h("p", {}, t("nothing_waiting"))),
    waiting.length
      ? h("section", { "aria-labelledby": "to-send", id: "outbox" },
          h("h2", { id: "to-send" }, t("to_send")),
          h("p", { class: "small" }, t("to_send_help")),
          h("ul", { class: "plain" }, waiting.map((item) => outboxItem(item, app))))
      : null,
    forThem.length
      ? h("section", { "aria-labelledby": "for-them" },
          h("h2", { id: "for-them" }, t("for_them")),
          h("ul", { class: "plain" }, forThem.map((p) => pendingItem(p, app))))
      : null,
  ];
}
