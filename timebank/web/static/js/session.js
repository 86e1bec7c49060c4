// The member's context: who they are, in which community, their accounts and the
// directory; kept in localStorage so that the app works offline. Also the device's
// signing key and the ledger's name, which signing needs.

import * as api from "./api.js";
import { deviceKey, markRegistered } from "./crypto.js";
import { formatAmount } from "./format.js";
import { language } from "./i18n.js";
import * as outbox from "./outbox.js";

const CONTEXT = "timebank.context";

const DIRECTORY_PAGE_SIZE = 100;

const FRESH_MS = 2000;

export let context = null;

export function ownAccounts() {
  const membership = context.membership;
  return membership.accounts.filter((account) => account.owner.id === membership.party_id);
}

export function ownAccountFor(unitCode) {
  return ownAccounts().find((account) => account.unit === unitCode)?.id;
}

export function unitOf(code) {
  return context.community.units.find((unit) => unit.code === code);
}

export function amountText(value, code) {
  return formatAmount(value, unitOf(code), language());
}

export function nameOfAccount(accountId) {
  const member = context.members.find((m) => m.accounts.some((a) => a.id === accountId));
  return member ? member.display_name : "?";
}

export function remember(members) {
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
export async function refreshBalances() {
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

// Reads the balances again unless they were read a moment ago.
export async function freshBalances() {
  if (Date.now() - context.read_at > FRESH_MS) await refreshBalances();
}

// The balances shown next must be read again (an exchange moved them).
export function staleBalances() {
  context.read_at = 0;
}

// A shared phone keeps nobody's names or balances once they have left.
export function forgetContext() {
  localStorage.removeItem(CONTEXT);
  context = null;
}

let loading = null;

export function loadContext() {
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
export async function ledgerOrigin() {
  if (!context.origin) {
    const slug = context.membership.community;
    context.origin = (await api.get(`/v1/communities/${slug}/log/checkpoint`)).origin;
    localStorage.setItem(CONTEXT, JSON.stringify(context));
  }
  return context.origin;
}

// What signing needs, made ready once the screen is shown: the device's key,
// registered the first time on this device, and the ledger's name.
export function prepareSigning() {
  const idle = window.requestIdleCallback || ((work) => setTimeout(work, 1));
  idle(() => {
    registeredKey().catch(() => {});
    ledgerOrigin().catch(() => {});
  });
}

let keyReady = null;

// The device's key, registered with the service the first time it is used here;
// one attempt at a time, so that two callers never make two keys.
export function registeredKey() {
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

// Treasurers and admins read the whole community.
export function audits() {
  return ["treasurer", "admin"].includes(context.membership.role);
}

export async function sendOutbox() {
  if (!context) return 0;
  try {
    // An intent signed offline names a key the service may not know yet.
    if ((await outbox.waiting()).length) await registeredKey();
    return await outbox.flush();
  } catch {
    return 0;
  }
}
