// The members' app: a hash router over one module per screen, on the HTTP API.

import * as api from "./api.js";
import { h, mount } from "./dom.js";
import { homeScreen } from "./home.js";
import { historyScreen } from "./history.js";
import { language, t } from "./i18n.js";
import { loginScreen, welcomeScreen } from "./login.js";
import { recordScreen } from "./record.js";
import {
  audits,
  context,
  forgetContext,
  loadContext,
  sendOutbox,
  staleBalances,
  unitOf,
} from "./session.js";
import { settingsScreen } from "./settings.js";
import { errorText, heading, say, setFlash, takeFlash } from "./ui.js";

const main = document.getElementById("main");

// Loaded only when a treasurer or an admin opens it.
async function auditScreen(app) {
  if (!audits()) return homeScreen(app);
  const { auditScreen: dashboard } = await import("./audit.js");
  return dashboard(context, unitOf);
}

// The menu's screens, in its order.
const SCREENS = { home: homeScreen, record: recordScreen, history: historyScreen, settings: settingsScreen };
// Loaded only when opened: most visits never need them.
async function poolsScreen(app) {
  const { poolsScreen: screen } = await import("./pools.js");
  return screen(app);
}

async function payScreen(app, query) {
  const { payScreen: screen } = await import("./pay.js");
  return screen(app, query);
}

// Screens reached from another screen, not from the menu.
const OTHER_SCREENS = { audit: auditScreen, pools: poolsScreen, pay: payScreen };

// What screens may ask of the app.
const app = { act, go, start };

// Runs an action of a screen, then shows the screen again with what came of it.
async function act(work, done) {
  // Whatever the answer, the balances shown next must be read again.
  staleBalances();
  try {
    await work();
    setFlash(done);
  } catch (error) {
    setFlash(errorText(error));
  }
  await route();
}

// Shows a screen: through the hash when it changes (hashchange routes), else at once.
async function go(name) {
  if (location.hash === `#/${name}`) await route();
  else location.hash = `#/${name}`;
}

function navigation(current) {
  const nav = document.getElementById("nav");
  nav.setAttribute("aria-label", t("nav"));
  mount(nav, h("ul", {}, Object.keys(SCREENS).map((name) =>
    h("li", {}, h("a", { href: `#/${name}`, "aria-current": name === current ? "page" : null }, t(name))))));
  nav.hidden = current === "login" || current === "welcome";
}

async function route() {
  // A screen's name, then what it is given (a payment code's "?to=...&amount=...").
  const [path, query = ""] = location.hash.replace(/^#\//, "").split("?");
  const wanted = path || "home";
  const known = wanted in SCREENS || wanted in OTHER_SCREENS;
  // An invitation's link works whoever is logged in on this phone, or nobody.
  const name = wanted === "welcome" ? "welcome" : api.loggedIn() ? (known ? wanted : "home") : "login";
  navigation(name);
  document.getElementById("offline").hidden = navigator.onLine;
  say(takeFlash());
  try {
    const before = { login: loginScreen, welcome: welcomeScreen }[name];
    if (!before && !context) await loadContext();
    const screen = before || SCREENS[name] || OTHER_SCREENS[name];
    mount(main, await screen(app, new URLSearchParams(query)));
    document.title = `${document.getElementById("title")?.textContent || t("app")} · ${t("app")}`;
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 401) {
      // The session is over (revoked, or its refresh token spent elsewhere).
      await api.logout();
      forgetContext();
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
