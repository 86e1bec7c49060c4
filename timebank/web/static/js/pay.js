// Paying and being paid with a code: my code (a link to pay my account, optionally
// an amount), drawn by the service as a QR code; a merchant's code read by the
// camera where the browser reads QR codes itself (BarcodeDetector), or pasted.
// Scan, check, pay: a signed payment, posted at once. Loaded only when opened.

import * as api from "./api.js";
import { signedIntent } from "./crypto.js";
import { h, mount } from "./dom.js";
import { t } from "./i18n.js";
import * as outbox from "./outbox.js";
import { amountFields, deviceKeyForSigning, readAmount, uuid4 } from "./record.js";
import {
  amountText,
  context,
  ledgerOrigin,
  nameOfAccount,
  ownAccountFor,
  ownAccounts,
  sendOutbox,
  staleBalances,
  unitOf,
} from "./session.js";
import { button, errorText, field, heading, say, select, setFlash } from "./ui.js";

const UUID = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/;
const UNIT = /^[A-Za-z][A-Za-z0-9_-]{0,15}$/;
const AMOUNT = /^[1-9][0-9]{0,14}$/;
const SCAN_INTERVAL_MS = 250;

// The link my code holds: this app's pay screen with my account.
export function payLink(account, unit, amount) {
  const query = new URLSearchParams({ to: account, unit });
  if (amount) query.set("amount", String(amount));
  return `${location.origin}/#/pay?${query}`;
}

// What a code (or a pasted link) asks: an account, a unit, maybe an amount; null
// for anything that is not one of our payment links.
export function readCode(text) {
  const at = String(text).indexOf("#/pay?");
  if (at < 0) return null;
  const query = new URLSearchParams(String(text).slice(at + "#/pay?".length).trim());
  const to = query.get("to") || "";
  const unit = query.get("unit") || "";
  const amount = query.get("amount");
  if (!UUID.test(to) || !UNIT.test(unit) || (amount !== null && !AMOUNT.test(amount))) return null;
  return { to, unit, amount: amount === null ? null : Number(amount) };
}

function myCode() {
  const accounts = ownAccounts();
  const chooser = select("code-unit", accounts.map((a) => [a.unit, unitOf(a.unit)?.name || a.unit]), accounts[0].unit);
  const amountSlot = h("div", {});
  const shown = h("div", { class: "code", "aria-live": "polite" });
  const showAmount = () => mount(amountSlot, amountFields(unitOf(chooser.value), "code-"));
  chooser.addEventListener("change", showAmount);
  showAmount();
  const show = (event) => {
    event.preventDefault();
    const unit = unitOf(chooser.value);
    const amount = readAmount(event.target, unit, "code-");
    const link = payLink(ownAccountFor(unit.code), unit.code, amount);
    mount(shown,
      h("img", { src: `/pay-code.svg?text=${encodeURIComponent(link)}`, alt: t("my_code_alt"), width: 264, height: 264 }),
      h("p", {}, amount ? amountText(amount, unit.code) : t("any_amount")),
      h("p", { class: "small link" }, link));
  };
  return h("section", { "aria-labelledby": "get-paid" },
    h("h2", { id: "get-paid" }, t("get_paid")),
    h("form", { onsubmit: show, novalidate: true },
      accounts.length > 1 ? field("code-unit", t("unit"), chooser) : null,
      amountSlot,
      h("p", { class: "small" }, t("amount_optional")),
      h("button", { type: "submit", class: "wide" }, t("show_code"))),
    shown);
}

function scanner(app) {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return null;
  const video = h("video", { playsinline: true, muted: true, class: "camera", hidden: true, "aria-label": t("camera") });
  const scan = async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch {
      return say(t("no_camera"));
    }
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    const stop = () => stream.getTracks().forEach((track) => track.stop());
    const look = async () => {
      if (!video.isConnected) return stop();
      const found = (await detector.detect(video).catch(() => [])).map((code) => readCode(code.rawValue)).find(Boolean);
      if (!found) return setTimeout(look, SCAN_INTERVAL_MS);
      stop();
      location.hash = `#/pay?${new URLSearchParams(Object.entries(found).filter(([, v]) => v !== null))}`;
    };
    look();
  };
  return [button(t("scan"), scan, "primary wide"), video];
}

function payByCode(app) {
  const code = h("input", { id: "code", name: "code", autocomplete: "off", inputmode: "url" });
  const go = (event) => {
    event.preventDefault();
    const found = readCode(code.value);
    if (!found) return say(t("not_a_code"));
    location.hash = `#/pay?${new URLSearchParams(Object.entries(found).filter(([, v]) => v !== null))}`;
  };
  return h("section", { "aria-labelledby": "pay-someone" },
    h("h2", { id: "pay-someone" }, t("pay_someone")),
    scanner(app),
    h("form", { onsubmit: go, novalidate: true },
      field("code", t("paste_code"), code),
      h("button", { type: "submit", class: "wide" }, t("continue"))));
}

// A signed payment goes through the outbox, as a recorded exchange does: kept on
// the device with its id and signature, sent now or when the connection returns,
// never twice (the service answers a known id with what it already has). Says
// whether it was sent, is waiting, or was refused (with why).
async function pay(asked, amount) {
  const from = ownAccountFor(asked.unit);
  const body = {
    id: uuid4(),
    community: context.membership.community,
    unit: asked.unit,
    from,
    to: asked.to,
    amount,
    memo: "",
  };
  body.signed = await signedIntent(await deviceKeyForSigning(), { ...body, ledger: await ledgerOrigin() });
  await outbox.enqueue(body);
  staleBalances();
  await sendOutbox();
  const left = (await outbox.waiting()).find((item) => item.id === body.id);
  return !left ? "sent" : left.error ? left.error : "waiting";
}

function notACode() {
  return [heading(t("pay_title")), h("p", { class: "error" }, t("not_a_code")), h("a", { href: "#/pay" }, t("pay_title"))];
}

// Who holds the account a code pays, as the service names them (a code carries no
// name, so that a forged one cannot show a trusted name); the directory's names
// already read do; "?" offline, where the payment waits to be sent anyway.
async function holderName(accountId) {
  const known = nameOfAccount(accountId);
  if (known !== "?") return known;
  try {
    const slug = context.membership.community;
    return (await api.get(`/v1/communities/${slug}/accounts/${accountId}/owner`)).display_name;
  } catch (error) {
    if (error instanceof api.NetworkError) return "?";
    if (error instanceof api.ApiError && error.status === 404) return null;
    throw error;
  }
}

async function confirmPayment(app, asked) {
  const unit = unitOf(asked.unit);
  if (!unit || !ownAccountFor(asked.unit) || asked.to === ownAccountFor(asked.unit)) return notACode();
  const name = await holderName(asked.to);
  if (name === null) return notACode();
  const submit = async (event) => {
    event.preventDefault();
    const amount = asked.amount ?? readAmount(event.target, unit, "pay-");
    if (!amount) return say(t("choose_amount"));
    let outcome;
    try {
      outcome = await pay(asked, amount);
    } catch (error) {
      return say(error instanceof outbox.OutboxFull ? t("outbox_full") : errorText(error));
    }
    const said = { name, amount: amountText(amount, unit.code) };
    if (outcome === "sent") setFlash(t("paid", said));
    else if (outcome === "waiting") setFlash(t("paid_queued", said));
    else setFlash(t("refused", { code: outcome }));
    await app.go("home");
  };
  return [
    heading(t("pay_title")),
    h("form", { onsubmit: submit, novalidate: true },
      h("p", { class: "big" }, asked.amount ? t("pay_whom", { name, amount: amountText(asked.amount, unit.code) }) : t("pay_whom_how_much", { name })),
      asked.amount ? null : amountFields(unit, "pay-"),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, t("pay")),
        h("a", { href: "#/home", class: "button" }, t("cancel")))),
  ];
}

export function payScreen(app, query) {
  const asked = query && query.has("to") ? readCode(`#/pay?${query}`) : null;
  if (asked) return confirmPayment(app, asked);
  return [heading(t("pay_title")), payByCode(app), myCode()];
}
