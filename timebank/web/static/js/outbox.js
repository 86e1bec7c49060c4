// Exchanges recorded on this device wait here, with their client id and signature,
// until the service has them. Everything goes through the outbox, online or not:
// one path, and nothing lost if the connection drops mid-request. Sending again is
// safe: the service answers a known id with the transaction it already has.

import { ApiError, NetworkError, call } from "./api.js";
import { withStore } from "./store.js";

const LOCK = "timebank-outbox";
// A phone offline for weeks must not fill its storage: past this, send first.
const OUTBOX_SIZE_MAX = 100;

export class OutboxFull extends Error {}

export async function enqueue(body) {
  const count = await withStore("outbox", "readonly", (s) => s.count());
  if (count >= OUTBOX_SIZE_MAX) throw new OutboxFull("outbox_full");
  const item = { id: body.id, body, recorded_at: new Date().toISOString(), error: null };
  await withStore("outbox", "readwrite", (s) => s.put(item));
  return item;
}

export async function waiting() {
  return (await withStore("outbox", "readonly", (s) => s.getAll())) || [];
}

export async function discard(id) {
  await withStore("outbox", "readwrite", (s) => s.delete(id));
}

async function sendOne(item) {
  try {
    await call("POST", "/v1/transactions", item.body);
    await discard(item.id);
    return true;
  } catch (error) {
    if (error instanceof NetworkError || (error instanceof ApiError && error.status >= 500)) {
      return false;
    }
    if (error instanceof ApiError && [401, 408, 429].includes(error.status)) return false;
    // Refused for good (a limit, an expired intent...): keep it, with why, for the member.
    await withStore("outbox", "readwrite", (s) => s.put({ ...item, error: error.code }));
    return true;
  }
}

// Sends what waits, oldest first; one sender at a time, across tabs. Returns how
// many were sent or refused (0 when there was nothing or no connection).
export async function flush() {
  const work = async () => {
    const items = (await waiting())
      .filter((item) => !item.error)
      .sort((a, b) => a.recorded_at.localeCompare(b.recorded_at));
    let done = 0;
    for (const item of items) {
      if (!(await sendOne(item))) break;
      done += 1;
    }
    return done;
  };
  return navigator.locks ? navigator.locks.request(LOCK, work) : work();
}
