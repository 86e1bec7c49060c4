// Settings: the language, this member's devices (revoke a lost one), logging out.

import * as api from "./api.js";
import { deviceKey } from "./crypto.js";
import { h } from "./dom.js";
import { formatDate } from "./format.js";
import { LANGUAGES, chooseLanguage, language, t } from "./i18n.js";
import { context, forgetContext } from "./session.js";
import { button, errorText, field, heading, select } from "./ui.js";

async function devicesList(app) {
  const slug = context.membership.community;
  const local = await deviceKey(context.me.id, slug);
  const keys = (await api.get(`/v1/me/keys?community=${slug}`)).items;
  const revoke = (key) =>
    app.act(async () => {
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

export async function settingsScreen(app) {
  const languages = select("language", Object.entries(LANGUAGES), language());
  languages.addEventListener("change", () => {
    chooseLanguage(languages.value);
    app.start();
  });
  let devices;
  try {
    devices = await devicesList(app);
  } catch (error) {
    devices = h("p", {}, errorText(error));
  }
  return [
    heading(t("settings_title")),
    field("language", t("language"), languages),
    h("section", { "aria-labelledby": "devices" }, h("h2", { id: "devices" }, t("devices")), devices),
    button(t("logout"), async () => {
      await api.logout();
      forgetContext();
      await app.go("login");
    }),
  ];
}
