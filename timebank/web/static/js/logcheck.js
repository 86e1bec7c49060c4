// "Verify now": the treasurer's phone checks the community's log itself, trusting
// nothing the service says without proof. The latest checkpoint's signature by the
// log's key (C2SP signed note, Ed25519), the root recomputed from every entry
// (RFC 9162: SHA-256 of 0x00||entry for a leaf, 0x01||left||right for a node), and
// the newest entry's inclusion proof against that root.

import * as api from "./api.js";

// Entries read per request (the API's own page limit).
const ENTRIES_PAGE = 1000;
// Beyond this the phone leaves the work to `timebank audit verify` on a computer.
export const ENTRIES_MAX = 50_000;
const NOTE_SIGNATURE_PREFIX = "\u2014 ";

const bytesOf = (text) => new TextEncoder().encode(text);
const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
};
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
const equal = (a, b) => a.length === b.length && a.every((byte, i) => byte === b[i]);

export const leafHash = (entry) => sha256(concat([0], entry));
export const nodeHash = (left, right) => sha256(concat([1], left, right));

// MTH of RFC 9162 over the leaves' hashes: the left subtree holds the largest power
// of two below the size.
export async function rootOf(leaves) {
  if (leaves.length === 1) return leaves[0];
  let split = 1;
  while (split * 2 < leaves.length) split *= 2;
  return nodeHash(await rootOf(leaves.slice(0, split)), await rootOf(leaves.slice(split)));
}

// RFC 9162 section 2.1.3.2, as timebank/log/merkle.py computes it.
export async function rootFromInclusion(leaf, index, size, proof) {
  let node = index;
  let last = size - 1;
  let computed = leaf;
  for (const sibling of proof) {
    if (last === 0) return null;
    if (node & 1 || node === last) {
      computed = await nodeHash(sibling, computed);
      while (!(node & 1) && node !== 0) {
        node >>= 1;
        last >>= 1;
      }
    } else {
      computed = await nodeHash(computed, sibling);
    }
    node >>= 1;
    last >>= 1;
  }
  return last === 0 ? computed : null;
}

// Whether one of the log's keys (`name+hexid+base64(0x01||key)`) signed the note.
async function signedByLogKey(note, keys) {
  const [body, signatures] = note.split("\n\n");
  const message = bytesOf(`${body}\n`);
  for (const text of keys) {
    // The key's base64 may hold "+" too: the name and id come first.
    const parts = /^([^+]+)\+[0-9a-f]{8}\+(.+)$/.exec(text);
    if (!parts) continue;
    const [, name, encoded] = parts;
    const material = fromBase64(encoded);
    if (material[0] !== 1) continue;
    const key = await crypto.subtle.importKey("raw", material.slice(1), { name: "Ed25519" }, false, ["verify"]);
    const keyId = (await sha256(concat(bytesOf(`${name}\n`), material))).slice(0, 4);
    for (const line of (signatures || "").split("\n")) {
      if (!line.startsWith(`${NOTE_SIGNATURE_PREFIX}${name} `)) continue;
      const signed = fromBase64(line.slice(NOTE_SIGNATURE_PREFIX.length + name.length + 1));
      if (!equal(signed.slice(0, 4), keyId)) continue;
      if (await crypto.subtle.verify({ name: "Ed25519" }, key, signed.slice(4), message)) return true;
    }
  }
  return false;
}

// What was checked, or the first thing that failed ({ ok: false, problem }).
export async function verifyLog(slug) {
  const base = `/v1/communities/${slug}/log`;
  const [checkpoint, keys] = await Promise.all([api.get(`${base}/checkpoint`), api.get(`${base}/keys`)]);
  const size = checkpoint.tree_size;
  const root = fromBase64(checkpoint.root_hash);
  if (!(await signedByLogKey(checkpoint.note, keys.keys))) return { ok: false, problem: "signature", size };
  if (size === 0) return { ok: true, size };
  if (size > ENTRIES_MAX) return { ok: false, problem: "too_large", size };
  const leaves = [];
  for (let start = 0; start < size; start += ENTRIES_PAGE) {
    const end = Math.min(size, start + ENTRIES_PAGE);
    const page = await api.get(`${base}/entries?start=${start}&end=${end}`);
    for (const entry of page.entries) leaves.push(await leafHash(bytesOf(entry)));
  }
  if (leaves.length !== size || !equal(await rootOf(leaves), root)) return { ok: false, problem: "root", size };
  const proof = await api.get(`${base}/proofs/inclusion?index=${size - 1}&size=${size}`);
  const fromProof = await rootFromInclusion(leaves[size - 1], size - 1, size, proof.hashes.map(fromBase64));
  if (!fromProof || !equal(fromProof, root)) return { ok: false, problem: "proof", size };
  return { ok: true, size, at: checkpoint.created_at };
}
