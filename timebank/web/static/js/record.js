// Recording an exchange: who, how long (or how much), what; created pending for the
// other person, signed on this device when the member is the one paying, and sent
// through the outbox so that nothing is lost offline.

import * as api from "./api.js";
import { deviceKey, signedIntent } from "./crypto.js";
import { h, mount } from "./dom.js";
import { parseAmount } from "./format.js";
import { categories, t } from "./i18n.js";
import * as outbox from "./outbox.js";
import {
  context,
  ledgerOrigin,
  ownAccountFor,
  ownAccounts,
  registeredKey,
  remember,
  sendOutbox,
  staleBalances,
  unitOf,
} from "./session.js";
import { errorText, field, heading, say, select, setFlash } from "./ui.js";

const SEARCH_DELAY_MS = 250;

const MINUTE_STEPS = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55];

const HOURS_MAX = 24;

const MEMBERS_PAGE_SIZE = 20;

// The other member, searched by name on the service a page at a time (the
// community's whole directory, not only what this phone knows); offline, among the
// members this phone has seen.
function memberPicker() {
  const results = h("div", { class: "choices", id: "members", role: "radiogroup", "aria-labelledby": "who-label" });
  const more = h("button", { type: "button", class: "wide", hidden: true }, t("more_members"));
  let timer = null;
  let shown = [];
  let cursor = null;
  let asked = 0;
  // The choice survives new search results, which replace the list.
  let chosen = null;
  results.addEventListener("change", (event) => {
    chosen = event.target.value;
  });
  const choice = (member) =>
    h("label", { class: "choice" },
      h("input", { type: "radio", name: "member", value: member.party_id, required: true, checked: member.party_id === chosen }),
      member.display_name);
  const show = (members, next) => {
    shown = members.filter((m) => m.party_id !== context.membership.party_id);
    cursor = next;
    more.hidden = !next;
    mount(results, shown.length ? shown.map(choice) : h("p", {}, t("no_match")));
  };
  const local = (query) => context.members.filter((m) => m.display_name.toLowerCase().includes(query.toLowerCase()));
  const page = (query, after) => {
    const search = new URLSearchParams({ limit: String(MEMBERS_PAGE_SIZE) });
    if (query) search.set("q", query);
    if (after) search.set("cursor", after);
    return api.get(`/v1/communities/${context.membership.community}/members?${search}`);
  };
  const search = async (text) => {
    const query = text.trim();
    const mine = ++asked;
    try {
      const found = await page(query, null);
      remember(found.items);
      // An older search answering late must not replace a newer one's results.
      if (mine === asked) show(found.items, found.next_cursor);
    } catch {
      if (mine === asked) show(local(query), null);
    }
  };
  more.addEventListener("click", async () => {
    try {
      const found = await page(input.value.trim(), cursor);
      remember(found.items);
      const before = shown.length;
      show([...shown, ...found.items], found.next_cursor);
      // The first new name takes the focus, so a keyboard user goes on from there.
      results.querySelectorAll("input")[before]?.focus();
    } catch (error) {
      say(errorText(error));
    }
  });
  const input = h("input", {
    id: "who",
    type: "search",
    autocomplete: "off",
    oninput: (event) => {
      clearTimeout(timer);
      timer = setTimeout(() => search(event.target.value), SEARCH_DELAY_MS);
    },
  });
  search("");
  return h("fieldset", {},
    h("legend", { id: "who-label" }, t("who")),
    field("who", t("search"), input),
    results,
    more);
}

// The amount of a unit: hours and minutes for time, a number for a currency. The
// prefix keeps ids apart when a screen has several such forms.
export function amountFields(unit, prefix = "") {
  if (unit.kind === "time") {
    const hours = Array.from({ length: HOURS_MAX + 1 }, (_, n) => [n, String(n)]);
    return h("fieldset", { class: "duration" },
      h("legend", {}, t("duration")),
      field(`${prefix}hours`, t("hours"), select(`${prefix}hours`, hours, 1)),
      field(`${prefix}minutes`, t("minutes"), select(`${prefix}minutes`, MINUTE_STEPS.map((m) => [m, String(m).padStart(2, "0")]), 0)));
  }
  return field(`${prefix}amount`, `${t("amount")} (${unit.code})`,
    h("input", { id: `${prefix}amount`, name: `${prefix}amount`, inputmode: "decimal", autocomplete: "off", required: true }));
}

export function readAmount(form, unit, prefix = "") {
  const elements = form.elements;
  if (unit.kind === "time") {
    return Number(elements[`${prefix}hours`].value) * 60 + Number(elements[`${prefix}minutes`].value);
  }
  return parseAmount(elements[`${prefix}amount`].value, unit.decimals);
}

export function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// What the member must fix in the form, said in plain words.
export class Invalid extends Error {}

async function exchangeBody(form) {
  const unit = unitOf(form.elements.unit.value);
  const amount = readAmount(form, unit);
  // Not form.elements.member.value: with one radio button that is its value, checked or not.
  const party = form.querySelector('input[name="member"]:checked')?.value;
  const member = context.members.find((m) => m.party_id === party);
  const theirs = member?.accounts.find((a) => a.unit === unit.code)?.id;
  if (!theirs) throw new Invalid(t("choose_member"));
  if (!amount) throw new Invalid(t("choose_amount"));
  const mine = ownAccountFor(unit.code);
  const iHelped = form.elements.direction.value === "helped";
  const body = {
    id: uuid4(),
    community: context.membership.community,
    unit: unit.code,
    from: iHelped ? theirs : mine,
    to: iHelped ? mine : theirs,
    amount,
    memo: form.elements.memo.value.trim(),
    category: form.elements.category.value,
    pending: true,
  };
  // Only the payer signs an intent; "I helped" is a proposal the payer confirms.
  if (!iHelped) {
    body.signed = await signedIntent(await deviceKeyForSigning(), { ...body, ledger: await ledgerOrigin() });
  }
  return { body, name: member.display_name };
}

export async function deviceKeyForSigning() {
  try {
    return await registeredKey();
  } catch (error) {
    // Offline: sign now with the device's key; it is registered before the outbox sends.
    if (error instanceof api.NetworkError) return deviceKey(context.me.id, context.membership.community);
    throw error;
  }
}

async function record(event, app) {
  event.preventDefault();
  const form = event.target;
  let made;
  try {
    made = await exchangeBody(form);
  } catch (error) {
    say(error instanceof Invalid ? error.message : errorText(error));
    return;
  }
  try {
    await outbox.enqueue(made.body);
  } catch (error) {
    say(error instanceof outbox.OutboxFull ? t("outbox_full") : errorText(error));
    return;
  }
  staleBalances();
  await sendOutbox();
  const left = (await outbox.waiting()).find((item) => item.id === made.body.id);
  setFlash(!left ? t("saved_pending", { name: made.name }) : left.error ? t("refused", { code: left.error }) : t("saved_queued"));
  await app.go("home");
}

export function recordScreen(app) {
  const accounts = ownAccounts();
  const first = unitOf(accounts[0].unit);
  const amountSlot = h("div", {}, amountFields(first));
  const unitSelect = select("unit", accounts.map((a) => [a.unit, unitOf(a.unit)?.name || a.unit]), first.code);
  unitSelect.addEventListener("change", () => mount(amountSlot, amountFields(unitOf(unitSelect.value))));
  const direction = (value, label, checked) =>
    h("label", { class: "choice" }, h("input", { type: "radio", name: "direction", value, checked, required: true }), label);
  return [
    heading(t("record_title")),
    h("form", { onsubmit: (event) => record(event, app), novalidate: true },
      h("fieldset", {}, h("legend", {}, t("direction")),
        direction("helped", t("i_helped"), true),
        direction("was-helped", t("was_helped"), false)),
      memberPicker(),
      accounts.length > 1 ? field("unit", t("unit"), unitSelect) : h("input", { type: "hidden", name: "unit", value: first.code }),
      amountSlot,
      field("category", t("category"), select("category", Object.entries(categories()), "help")),
      field("memo", t("memo"), h("input", { id: "memo", name: "memo", maxlength: 500, autocomplete: "off" })),
      h("button", { type: "submit", class: "primary wide" }, t("save"))),
  ];
}
