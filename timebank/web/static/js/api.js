// The HTTP API with the member's session: a short access token, renewed with the
// refresh token (which rotates on each use, so only one renewal may be in flight,
// across tabs too: a reused refresh token ends the session).

const SESSION = "timebank.session";
// Renew a little before the access token expires rather than after a refusal.
const EARLY_RENEWAL_MS = 30_000;

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "http_error";
  }
}

// The request never reached the service (offline, or the connection failed).
export class NetworkError extends Error {}

function readSession() {
  try {
    return JSON.parse(localStorage.getItem(SESSION));
  } catch {
    return null;
  }
}

function keepSession(tokens) {
  const session = {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_at: Date.now() + tokens.expires_in * 1000,
  };
  localStorage.setItem(SESSION, JSON.stringify(session));
  return session;
}

export function loggedIn() {
  return readSession() !== null;
}

async function send(path, init) {
  try {
    return await fetch(path, { ...init, credentials: "omit", cache: "no-store" });
  } catch {
    throw new NetworkError("network");
  }
}

async function tokens(form) {
  const response = await send("/v1/auth/token", { method: "POST", body: new URLSearchParams(form) });
  const body = await response.json();
  if (!response.ok) throw new ApiError(response.status, body);
  return keepSession(body);
}

// An invited person chooses their password with the invitation's token (no
// session yet), then logs in with it.
export async function acceptInvitation(token, password) {
  const response = await send("/v1/invitations/accept", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token, password }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  await login(body.email, password);
}

export async function login(email, password) {
  await tokens({ grant_type: "password", username: email, password });
}

export async function logout() {
  const session = readSession();
  localStorage.removeItem(SESSION);
  if (session) {
    await send("/v1/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh_token }),
    }).catch(() => {});
  }
}

let renewal = null;

async function renew(stale) {
  const locked = (work) =>
    navigator.locks ? navigator.locks.request("timebank-session", work) : work();
  return locked(async () => {
    const current = readSession();
    // Another tab may have renewed while we waited for the lock.
    if (!current || current.access_token !== stale.access_token) return current;
    try {
      return await tokens({ grant_type: "refresh_token", refresh_token: current.refresh_token });
    } catch (error) {
      if (error instanceof ApiError) localStorage.removeItem(SESSION);
      throw error;
    }
  });
}

async function accessToken(force = false) {
  const session = readSession();
  if (!session) throw new ApiError(401, { code: "unauthenticated", detail: "logged out" });
  if (!force && session.expires_at - EARLY_RENEWAL_MS > Date.now()) return session.access_token;
  renewal ??= renew(session).finally(() => {
    renewal = null;
  });
  const renewed = await renewal;
  if (!renewed) throw new ApiError(401, { code: "unauthenticated", detail: "logged out" });
  return renewed.access_token;
}

async function authorized(method, path, body) {
  let response;
  for (const force of [false, true]) {
    const headers = { Authorization: `Bearer ${await accessToken(force)}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    response = await send(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status !== 401) break;
  }
  return response;
}

export async function call(method, path, body) {
  const response = await authorized(method, path, body);
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, parsed || {});
  return { status: response.status, body: parsed };
}

// The answer itself (a CSV export, say), once it is known to be a success.
export async function raw(path) {
  const response = await authorized("GET", path);
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
  return response;
}

export const get = async (path) => (await call("GET", path)).body;
