// The member's statement, newest first, with the balance each entry left, a page at
// a time as the list scrolls.

import * as api from "./api.js";
import { h, mount } from "./dom.js";
import { formatDate } from "./format.js";
import { categories, language, t } from "./i18n.js";
import { amountText, ownAccounts, unitOf } from "./session.js";
import { button, errorText, field, heading, say, select } from "./ui.js";

const PAGE_SIZE = 20;

function entryItem(entry, code) {
  const label = entry.memo || categories()[entry.category] || entry.category || entry.kind;
  return h("li", { class: "entry" },
    h("span", {}, h("span", { class: "small" }, formatDate(entry.posted_at, language())), h("br"), label),
    h("span", { class: "figures" },
      h("strong", { class: entry.amount < 0 ? "out" : "in" }, (entry.amount > 0 ? "+" : "") + amountText(entry.amount, code)),
      h("br"),
      h("span", { class: "small" }, t("balance_after", { amount: amountText(entry.balance_after, code) }))));
}

export function historyScreen() {
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
      watchFromHere();
    }
  };
  // Infinite scroll: the next page comes when the button scrolls into view. After
  // each page the button is watched afresh, its notifications still queued dropped:
  // one computed before the page arrived (the button then in view above an empty or
  // shorter list) would otherwise fetch the next page unasked.
  const watcher = new IntersectionObserver((seen) => seen[seen.length - 1].isIntersecting && cursor && load());
  const watchFromHere = () => {
    watcher.takeRecords();
    watcher.unobserve(more);
    watcher.observe(more);
  };
  chooser.addEventListener("change", () => load(true));
  load(true);
  return [
    heading(t("history_title")),
    accounts.length > 1 ? field("history-unit", t("unit"), chooser) : null,
    list,
    more,
  ];
}
