// The device's signing key and what it signs, byte for byte as the server checks
// (timebank/signing/intents.py): RFC 8785 canonical JSON, SHA-256, base64url.
// The private key is made non-extractable and kept in IndexedDB: it never leaves
// this browser. Ed25519 where the browser has it, else ECDSA P-256.

import { withStore } from "./store.js";

const INTENT_VERSION = 1;
// How long a signed intent stays valid: long enough for an exchange recorded
// offline to be sent when the phone finds a connection again.
export const INTENT_LIFETIME_MS = 7 * 24 * 3600 * 1000;
const KEY_ID_SIZE_BYTES = 16;

export function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function fromBase64url(text) {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (character) => character.charCodeAt(0));
}

// RFC 8785 for what we sign (strings and integers in a flat object): keys sorted by
// UTF-16 code units, no whitespace, strings and numbers as JSON.stringify spells them.
export function canonical(fields) {
  const keys = Object.keys(fields).sort();
  for (const key of keys) {
    const value = fields[key];
    if (typeof value !== "string" && !Number.isSafeInteger(value)) {
      throw new TypeError(`${key}: only strings and safe integers are signed`);
    }
  }
  const members = keys.map((key) => `${JSON.stringify(key)}:${JSON.stringify(fields[key])}`);
  return new TextEncoder().encode(`{${members.join(",")}}`);
}

export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// "YYYY-MM-DDTHH:MM:SSZ", to the second.
export function timestamp(milliseconds) {
  return new Date(Math.floor(milliseconds / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

async function keyId(algorithm, publicKey) {
  const named = new Uint8Array([...new TextEncoder().encode(algorithm), 0, ...publicKey]);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", named));
  return base64url(digest.slice(0, KEY_ID_SIZE_BYTES));
}

const ALGORITHMS = [
  { name: "ed25519", generate: { name: "Ed25519" }, sign: { name: "Ed25519" } },
  {
    name: "p256",
    generate: { name: "ECDSA", namedCurve: "P-256" },
    sign: { name: "ECDSA", hash: "SHA-256" },
  },
];

async function generate() {
  for (const algorithm of ALGORITHMS) {
    try {
      const pair = await crypto.subtle.generateKey(algorithm.generate, false, ["sign", "verify"]);
      const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
      return {
        algorithm: algorithm.name,
        privateKey: pair.privateKey,
        publicKey: base64url(publicKey),
        keyId: await keyId(algorithm.name, publicKey),
        registered: false,
      };
    } catch {
      // This browser lacks the algorithm: try the next one.
    }
  }
  throw new Error("no signing algorithm in this browser");
}

// The device key of this person in this community, made on first use.
export async function deviceKey(personId, community, { renew = false } = {}) {
  const name = `${personId}/${community}`;
  const stored = renew ? undefined : await withStore("keys", "readonly", (s) => s.get(name));
  if (stored) return stored;
  const key = { name, ...(await generate()) };
  await withStore("keys", "readwrite", (s) => s.put(key));
  return key;
}

export async function markRegistered(key) {
  key.registered = true;
  await withStore("keys", "readwrite", (s) => s.put(key));
}

async function sign(key, bytes) {
  const algorithm = ALGORITHMS.find((a) => a.name === key.algorithm);
  const signature = await crypto.subtle.sign(algorithm.sign, key.privateKey, bytes);
  return base64url(new Uint8Array(signature));
}

export async function signedIntent(key, fields) {
  const bytes = canonical({
    v: INTENT_VERSION,
    type: "transfer",
    ledger: fields.ledger,
    tx_id: fields.id,
    payer: fields.from,
    payee: fields.to,
    unit: fields.unit,
    amount: fields.amount,
    memo_hash: await sha256Hex(new TextEncoder().encode(fields.memo)),
    not_after: timestamp(Date.now() + INTENT_LIFETIME_MS),
    key_id: key.keyId,
  });
  return { intent: base64url(bytes), signature: await sign(key, bytes) };
}

export async function signedAck(key, { ledger, id, intent, decision }) {
  const bytes = canonical({
    v: INTENT_VERSION,
    type: "ack",
    ledger,
    tx_id: id,
    tx_hash: await sha256Hex(fromBase64url(intent)),
    decision,
    key_id: key.keyId,
  });
  return { ack: base64url(bytes), signature: await sign(key, bytes) };
}

// A pool manager's decision on a request for help (timebank/signing/intents.py).
export async function signedPoolDecision(key, { ledger, requestId, decision }) {
  const bytes = canonical({
    v: INTENT_VERSION,
    type: "pool_decision",
    ledger,
    request_id: requestId,
    decision,
    key_id: key.keyId,
  });
  return { decision: base64url(bytes), signature: await sign(key, bytes) };
}
