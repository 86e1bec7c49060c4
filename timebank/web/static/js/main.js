// The members' app: a hash router and one function per screen, on the HTTP API.

import * as api from "./api.js";
import { deviceKey, markRegistered, signedAck, signedIntent } from "./crypto.js";
import { h, mount } from "./dom.js";
import { formatAmount, formatDate, parseAmount } from "./format.js";
import { LANGUAGES, categories, chooseLanguage, language, t } from "./i18n.js";
import * as outbox from "./outbox.js";

const CONTEXT = "timebank.context";
const PAGE_SIZE = 20;
const PENDING_PAGE_SIZE = 50;
const DIRECTORY_PAGE_SIZE = 100;
const SEARCH_DELAY_MS = 250;
const MINUTE_STEPS = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55];
const HOURS_MAX = 24;
const FRESH_MS = 2000;

const main = document.getElementById("main");
const status = document.getElementById("status");
let context = null;
let flash = "";

// --- the member's context, kept for offline use -------------------------------------------

function ownAccounts() {
  const membership = context.membership;
  return membership.accounts.filter((account) => account.owner.id === membership.party_id);
}

function unitOf(code) {
  return context.community.units.find((unit) => unit.code === code);
}

function amountText(value, code) {
  return formatAmount(value, unitOf(code), language());
}

function nameOfAccount(accountId) {
  const member = context.members.find((m) => m.accounts.some((a) => a.id === accountId));
  return member ? member.display_name : "?";
}

function remember(members) {
  const known = new Map(context.members.map((member) => [member.party_id, member]));
  for (const member of members) known.set(member.party_id, member);
  context.members = [...known.values()];
  localStorage.setItem(CONTEXT, JSON.stringify(context));
}

function chosenMembership(me) {
  const cached = context || JSON.parse(localStorage.getItem(CONTEXT) || "null");
  return (
    me.memberships.find((m) => cached && m.community === cached.membership.community) ||
    me.memberships[0]
  );
}

// Balances are read afresh on each visit of the home screen; the cached ones offline.
async function refreshBalances() {
  try {
    const me = await api.get("/v1/me");
    context.me = me;
    context.membership = chosenMembership(me);
    context.read_at = Date.now();
    localStorage.setItem(CONTEXT, JSON.stringify(context));
  } catch (error) {
    if (!(error instanceof api.NetworkError)) throw error;
  }
}

let loading = null;

function loadContext() {
  loading ??= readContext().finally(() => {
    loading = null;
  });
  return loading;
}

async function readContext() {
  try {
    const me = await api.get("/v1/me");
    const membership = chosenMembership(me);
    const slug = membership.community;
    const [community, directory] = await Promise.all([
      api.get(`/v1/communities/${slug}`),
      api.get(`/v1/communities/${slug}/members?limit=${DIRECTORY_PAGE_SIZE}`),
    ]);
    const origin = context?.membership.community === slug ? context.origin : null;
    context = { me, membership, community, origin, members: directory.items, read_at: Date.now() };
    localStorage.setItem(CONTEXT, JSON.stringify(context));
  } catch (error) {
    if (!(error instanceof api.NetworkError)) throw error;
    context = JSON.parse(localStorage.getItem(CONTEXT) || "null");
    if (!context) throw error;
  }
}

// The ledger's name (its log origin), which every signed document names; kept for
// signing offline.
async function ledgerOrigin() {
  if (!context.origin) {
    const slug = context.membership.community;
    context.origin = (await api.get(`/v1/communities/${slug}/log/checkpoint`)).origin;
    localStorage.setItem(CONTEXT, JSON.stringify(context));
  }
  return context.origin;
}

// What signing needs, made ready once the screen is shown: the device's key,
// registered the first time on this device, and the ledger's name.
function prepareSigning() {
  const idle = window.requestIdleCallback || ((work) => setTimeout(work, 1));
  idle(() => {
    registeredKey().catch(() => {});
    ledgerOrigin().catch(() => {});
  });
}

let keyReady = null;

// The device's key, registered with the service the first time it is used here;
// one attempt at a time, so that two callers never make two keys.
function registeredKey() {
  keyReady ??= registerKey().finally(() => {
    keyReady = null;
  });
  return keyReady;
}

async function registerKey() {
  const key = await deviceKey(context.me.id, context.membership.community);
  if (key.registered) return key;
  const label = `${navigator.userAgentData?.platform || "Browser"} ${new Date().toLocaleDateString(language())}`;
  try {
    await api.call("POST", "/v1/me/keys", {
      community: context.membership.community,
      algorithm: key.algorithm,
      public_key: key.publicKey,
      label,
    });
  } catch (error) {
    if (!(error instanceof api.ApiError && error.code === "already_exists")) throw error;
  }
  await markRegistered(key);
  return key;
}

// --- pending exchanges ----------------------------------------------------------------------

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
  const unit = unitOf(ownAccounts().find((account) => account.id === own.account).unit);
  return {
    transaction,
    intent,
    payee,
    mineToAnswer,
    name: other ? nameOfAccount(other.account) : "?",
    amount: formatAmount(Math.abs(own.amount), unit, language()),
  };
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
  await api.call("POST", `/v1/transactions/${id}/${action}?community=${slug}`, body);
}

// --- screens --------------------------------------------------------------------------------

function heading(text) {
  return h("h1", { tabindex: "-1", id: "title" }, text);
}

function button(label, onclick, kind = "") {
  return h("button", { type: "button", class: kind, onclick }, label);
}

async function act(work, done) {
  // Whatever the answer, the balances shown next must be read again.
  context.read_at = 0;
  try {
    await work();
    flash = done;
  } catch (error) {
    flash = errorText(error);
  }
  await route();
}

function errorText(error) {
  if (error instanceof api.NetworkError) return t("offline_now");
  return t("error", { code: error.code || error.message });
}

function pendingItem(pending) {
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
        button(t("confirm"), () => act(() => answer(pending, "accept"), t("confirmed")), "primary"),
        button(t("decline"), () => act(() => answer(pending, "decline"), t("declined"))),
      ]
    : [button(t("withdraw"), () => act(() => answer(pending, "decline"), t("withdrawn")))];
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

function outboxItem(item) {
  const body = item.body;
  return h(
    "li",
    { class: "card" },
    h("p", {}, `${nameOfAccount(body.from === ownAccountFor(body.unit) ? body.to : body.from)} · ${amountText(body.amount, body.unit)}`),
    item.error
      ? [
          h("p", { class: "error" }, t("refused", { code: item.error })),
          button(t("remove"), () => act(() => outbox.discard(item.id), "")),
        ]
      : null,
  );
}

function ownAccountFor(unitCode) {
  return ownAccounts().find((account) => account.unit === unitCode)?.id;
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

async function homeScreen() {
  // The first visit on a device makes its signing key and registers it.
  prepareSigning();
  // Just read when the app opened; else read again (a confirmation moves them).
  if (Date.now() - context.read_at > FRESH_MS) await refreshBalances();
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
    audits() ? h("a", { href: "#/audit", class: "button wide" }, t("open_audit")) : null,
    h("section", { "aria-labelledby": "for-you" },
      h("h2", { id: "for-you" }, t("for_you")),
      forYou.length ? h("ul", { class: "plain" }, forYou.map(pendingItem)) : h("p", {}, t("nothing_waiting"))),
    waiting.length
      ? h("section", { "aria-labelledby": "to-send", id: "outbox" },
          h("h2", { id: "to-send" }, t("to_send")),
          h("p", { class: "small" }, t("to_send_help")),
          h("ul", { class: "plain" }, waiting.map(outboxItem)))
      : null,
    forThem.length
      ? h("section", { "aria-labelledby": "for-them" },
          h("h2", { id: "for-them" }, t("for_them")),
          h("ul", { class: "plain" }, forThem.map(pendingItem)))
      : null,
  ];
}

function field(id, label, control, hint) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint || null);
}

function select(id, options, value) {
  return h(
    "select",
    { id, name: id },
    options.map(([optionValue, text]) =>
      h("option", { value: optionValue, selected: String(optionValue) === String(value) }, text),
    ),
  );
}

function memberPicker() {
  const results = h("div", { class: "choices", id: "members", role: "radiogroup", "aria-labelledby": "who-label" });
  let timer = null;
  // The choice survives new search results, which replace the list.
  let chosen = null;
  results.addEventListener("change", (event) => {
    chosen = event.target.value;
  });
  const show = (members) => {
    const others = members.filter((m) => m.party_id !== context.membership.party_id);
    mount(
      results,
      others.length
        ? others.map((member) =>
            h("label", { class: "choice" },
              h("input", {
                type: "radio",
                name: "member",
                value: member.party_id,
                required: true,
                checked: member.party_id === chosen,
              }),
              member.display_name),
          )
        : h("p", {}, t("no_match")),
    );
  };
  const search = async (text) => {
    const query = text.trim().toLowerCase();
    const local = context.members.filter((m) => m.display_name.toLowerCase().includes(query));
    if (!query || !navigator.onLine) return show(local);
    try {
      const page = await api.get(
        `/v1/communities/${context.membership.community}/members?q=${encodeURIComponent(text.trim())}&limit=20`,
      );
      remember(page.items);
      show(page.items);
    } catch {
      show(local);
    }
  };
  const input = h("input", {
    id: "who",
    type: "search",
    autocomplete: "off",
    oninput: (event) => {
      clearTimeout(timer);
      timer = setTimeout(() => search(event.target.value), SEARCH_DELAY_MS);
    },
  });
  show(context.members);
  return h("fieldset", {},
    h("legend", { id: "who-label" }, t("who")),
    field("who", t("search"), input),
    results);
}

function amountFields(unit) {
  if (unit.kind === "time") {
    const hours = Array.from({ length: HOURS_MAX + 1 }, (_, n) => [n, String(n)]);
    return h("fieldset", { class: "duration" },
      h("legend", {}, t("duration")),
      field("hours", t("hours"), select("hours", hours, 1)),
      field("minutes", t("minutes"), select("minutes", MINUTE_STEPS.map((m) => [m, String(m).padStart(2, "0")]), 0)));
  }
  return field("amount", `${t("amount")} (${unit.code})`,
    h("input", { id: "amount", name: "amount", inputmode: "decimal", autocomplete: "off", required: true }));
}

function readAmount(form, unit) {
  if (unit.kind === "time") {
    return Number(form.elements.hours.value) * 60 + Number(form.elements.minutes.value);
  }
  return parseAmount(form.elements.amount.value, unit.decimals);
}

function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// What the member must fix in the form, said in plain words.
class Invalid extends Error {}

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

async function deviceKeyForSigning() {
  try {
    return await registeredKey();
  } catch (error) {
    // Offline: sign now with the device's key; it is registered before the outbox sends.
    if (error instanceof api.NetworkError) return deviceKey(context.me.id, context.membership.community);
    throw error;
  }
}

async function record(event) {
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
  context.read_at = 0;
  await sendOutbox();
  const left = (await outbox.waiting()).find((item) => item.id === made.body.id);
  flash = !left ? t("saved_pending", { name: made.name }) : left.error ? t("refused", { code: left.error }) : t("saved_queued");
  await go("home");
}

function recordScreen() {
  const accounts = ownAccounts();
  const first = unitOf(accounts[0].unit);
  const amountSlot = h("div", {}, amountFields(first));
  const unitSelect = select("unit", accounts.map((a) => [a.unit, unitOf(a.unit)?.name || a.unit]), first.code);
  unitSelect.addEventListener("change", () => mount(amountSlot, amountFields(unitOf(unitSelect.value))));
  const direction = (value, label, checked) =>
    h("label", { class: "choice" }, h("input", { type: "radio", name: "direction", value, checked, required: true }), label);
  return [
    heading(t("record_title")),
    h("form", { onsubmit: record, novalidate: true },
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

function entryItem(entry, code) {
  const label = entry.memo || categories()[entry.category] || entry.category || entry.kind;
  return h("li", { class: "entry" },
    h("span", {}, h("span", { class: "small" }, formatDate(entry.posted_at, language())), h("br"), label),
    h("span", { class: "figures" },
      h("strong", { class: entry.amount < 0 ? "out" : "in" }, (entry.amount > 0 ? "+" : "") + amountText(entry.amount, code)),
      h("br"),
      h("span", { class: "small" }, t("balance_after", { amount: amountText(entry.balance_after, code) }))));
}

function historyScreen() {
  const accounts = ownAccounts();
  const list = h("ol", { class: "plain" });
  const more = button(t("more"), () => load());
  const chooser = select("history-unit", accounts.map((a) => [a.id, unitOf(a.unit)?.name || a.unit]), accounts[0].id);
  let cursor = null;
  let loading = false;
  const load = async (fresh = false) => {
    if (loading) return;
    loading = true;
    const account = accounts.find((a) => a.id === chooser.value);
    if (fresh) {
      cursor = null;
      mount(list);
    }
    try {
      const query = `limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = await api.get(`/v1/accounts/${account.id}/entries?${query}`);
      for (const entry of page.items) list.append(entryItem(entry, account.unit));
      if (!list.children.length) list.append(h("li", {}, t("no_history")));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      say(errorText(error));
    } finally {
      loading = false;
    }
  };
  chooser.addEventListener("change", () => load(true));
  // Infinite scroll: the next page comes when the button scrolls into view.
  new IntersectionObserver((seen) => seen[0].isIntersecting && cursor && load()).observe(more);
  load(true);
  return [
    heading(t("history_title")),
    accounts.length > 1 ? field("history-unit", t("unit"), chooser) : null,
    list,
    more,
  ];
}

async function devicesList() {
  const slug = context.membership.community;
  const local = await deviceKey(context.me.id, slug);
  const keys = (await api.get(`/v1/me/keys?community=${slug}`)).items;
  const revoke = (key) =>
    act(async () => {
      await api.call("DELETE", `/v1/communities/${slug}/keys/${key.key_id}`);
      // A revoked key signs nothing more: this device makes a new one when next needed.
      if (key.key_id === local.keyId) await deviceKey(context.me.id, slug, { renew: true });
    }, t("revoke_done"));
  return h("ul", { class: "plain" }, keys.map((key) =>
    h("li", { class: "card" },
      h("p", {}, h("strong", {}, key.label || key.key_id),
        key.key_id === local.keyId ? ` · ${t("this_device")}` : "",
        h("br"), h("span", { class: "small" }, formatDate(key.registered_at, language()))),
      key.revoked_at ? h("p", {}, t("revoked")) : button(t("revoke"), () => revoke(key)))));
}

async function settingsScreen() {
  const languages = select("language", Object.entries(LANGUAGES), language());
  languages.addEventListener("change", () => {
    chooseLanguage(languages.value);
    start();
  });
  let devices;
  try {
    devices = await devicesList();
  } catch (error) {
    devices = h("p", {}, errorText(error));
  }
  return [
    heading(t("settings_title")),
    field("language", t("language"), languages),
    h("section", { "aria-labelledby": "devices" }, h("h2", { id: "devices" }, t("devices")), devices),
    button(t("logout"), async () => {
      await api.logout();
      // A shared phone keeps nobody's names or balances once they have left.
      localStorage.removeItem(CONTEXT);
      context = null;
      await go("login");
    }),
  ];
}

function loginScreen() {
  const submit = async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await api.login(form.elements.email.value.trim(), form.elements.password.value);
      await go("home");
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
function audits() {
  return ["treasurer", "admin"].includes(context.membership.role);
}

async function auditScreen() {
  if (!audits()) return homeScreen();
  const { auditScreen: dashboard } = await import("./audit.js");
  return dashboard(context, unitOf);
}

const SCREENS = { home: homeScreen, record: recordScreen, history: historyScreen, settings: settingsScreen };
// Screens reached from another screen, not from the menu.
const OTHER_SCREENS = { audit: auditScreen };

// Shows a screen: through the hash when it changes (hashchange routes), else at once.
async function go(name) {
  if (location.hash === `#/${name}`) await route();
  else location.hash = `#/${name}`;
}

function say(text) {
  status.textContent = text;
}

function navigation(current) {
  const nav = document.getElementById("nav");
  nav.setAttribute("aria-label", t("nav"));
  mount(nav, h("ul", {}, Object.keys(SCREENS).map((name) =>
    h("li", {}, h("a", { href: `#/${name}`, "aria-current": name === current ? "page" : null }, t(name))))));
  nav.hidden = current === "login";
}

async function sendOutbox() {
  if (!context) return 0;
  try {
    // An intent signed offline names a key the service may not know yet.
    if ((await outbox.waiting()).length) await registeredKey();
    return await outbox.flush();
  } catch {
    return 0;
  }
}

async function route() {
  const wanted = location.hash.replace(/^#\//, "") || "home";
  const known = wanted in SCREENS || wanted in OTHER_SCREENS;
  const name = api.loggedIn() ? (known ? wanted : "home") : "login";
  navigation(name);
  document.getElementById("offline").hidden = navigator.onLine;
  say(flash);
  flash = "";
  try {
    if (name !== "login" && !context) await loadContext();
    mount(main, await (name === "login" ? loginScreen : SCREENS[name] || OTHER_SCREENS[name])());
    document.title = `${document.getElementById("title")?.textContent || t("app")} · ${t("app")}`;
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 401) {
      // The session is over (revoked, or its refresh token spent elsewhere).
      await api.logout();
      context = null;
      return go("login");
    }
    mount(main, heading(t("app")), h("p", { class: "error" }, errorText(error)));
  }
  document.getElementById("title")?.focus();
}

function start() {
  document.documentElement.lang = language();
  document.getElementById("skip").textContent = t("skip");
  document.getElementById("offline").textContent = t("offline_now");
  route().then(sendOutbox);
}

window.addEventListener("hashchange", route);
window.addEventListener("online", async () => {
  if ((await sendOutbox()) > 0 && /home|^$/.test(location.hash)) await route();
  document.getElementById("offline").hidden = true;
});
window.addEventListener("offline", () => {
  document.getElementById("offline").hidden = false;
});
start();
if ("serviceWorker" in navigator) {
  // The CSP lets script URLs through only this policy, and it knows one URL.
  const policy = window.trustedTypes?.createPolicy("timebank", {
    createScriptURL: (url) => {
      if (url !== "/sw.js") throw new TypeError(`not a script of ours: ${url}`);
      return url;
    },
  });
  const worker = policy ? policy.createScriptURL("/sw.js") : "/sw.js";
  window.addEventListener("load", () => navigator.serviceWorker.register(worker));
}
