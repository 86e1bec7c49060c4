// The treasurer's dashboard: the trial balance (zero per unit), the accounts near
// their limits, the flows over time (charts) and by category this month, the
// pools and their decisions, unpaid dues, the euro reserve, the log verified on
// demand, the journal as CSV, and an admin's tasks. Loaded only when a treasurer or an admin opens it:
// members never download it.

import * as api from "./api.js";
import { adminSection } from "./admin.js";
import { barChart } from "./chart.js";
import { h, mount } from "./dom.js";
import { formatAmount, formatDate } from "./format.js";
import { categories, language, t } from "./i18n.js";
import { verifyLog } from "./logcheck.js";
import { field, select } from "./ui.js";

// Near a limit: 90% of the allowed debt used, or within 10% of the ceiling (the
// service lists them: GET .../accounts/near-limits).
const NEAR_LIMIT_SHARE_BPS = 1000;
const NEAR_LIMITS_READ = 100;
const POOL_REQUESTS_READ = 20;
const INACTIVE_DAYS = 90;
const INACTIVE_READ = 100;

// A table that scrolls sideways on a phone, reachable by keyboard to do so.
function table(caption, headers, rows) {
  return h(
    "div",
    { class: "scroll", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
    ),
  );
}

function trialBalance(balance, unitOf) {
  const amount = (value, code) => formatAmount(value, unitOf(code), language());
  return h(
    "section",
    { "aria-labelledby": "trial" },
    h("h2", { id: "trial" }, t("trial_balance")),
    h("p", { class: balance.balanced ? "" : "error", id: "balanced" },
      balance.balanced ? t("balanced") : t("not_balanced")),
    table(
      t("trial_balance"),
      [t("unit"), t("accounts"), t("sum"), t("credit_total"), t("debit_total"), t("pending")],
      balance.units.map((unit) => [
        unitOf(unit.unit)?.name || unit.unit,
        String(unit.account_count),
        amount(unit.sum_of_balances, unit.unit),
        amount(unit.total_positive_balances, unit.unit),
        amount(unit.total_negative_balances, unit.unit),
        String(unit.pending_transactions),
      ]),
    ),
  );
}

async function nearLimits(context, unitOf) {
  const slug = context.membership.community;
  const page = await api.get(`/v1/communities/${slug}/accounts/near-limits?share_bps=${NEAR_LIMIT_SHARE_BPS}&limit=${NEAR_LIMITS_READ}`);
  const near = page.items.map((account) => ({ member: account.owner, account }));
  const amount = (value, code) => formatAmount(value, unitOf(code), language());
  return h(
    "section",
    { "aria-labelledby": "limits" },
    h("h2", { id: "limits" }, t("near_limits")),
    near.length
      ? table(
          t("near_limits"),
          [t("member"), t("balance"), t("limits")],
          near.map(({ member, account }) => [
            member.display_name,
            amount(account.balance, account.unit),
            `${amount(account.min_balance, account.unit)} … ${amount(account.max_balance, account.unit)}`,
          ]),
        )
      : h("p", {}, t("none_near")),
  );
}

async function flows(context, unitOf) {
  const slug = context.membership.community;
  const now = new Date();
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
  const report = await api.get(`/v1/communities/${slug}/flows?from=${encodeURIComponent(from)}`);
  const names = categories();
  const charts = h("div", { id: "flow-charts", "aria-live": "polite" });
  const period = select("flow-period", [["month", t("by_month")], ["week", t("by_week")]], "month");
  const draw = async () => {
    try {
      mount(charts, await flowCharts(context, unitOf, period.value));
    } catch (error) {
      mount(charts, h("p", { class: "error" }, t("error", { code: error.code || error.message })));
    }
  };
  period.addEventListener("change", draw);
  await draw();
  return h(
    "section",
    { "aria-labelledby": "flows" },
    h("h2", { id: "flows" }, t("flows_over_time")),
    field("flow-period", t("period"), period),
    charts,
    h("h3", {}, t("flows_month")),
    report.items.length
      ? table(
          t("flows_month"),
          [t("category"), t("exchanges"), t("total")],
          report.items.map((flow) => [
            names[flow.category] || flow.category || flow.kind,
            String(flow.transactions),
            formatAmount(flow.total, unitOf(flow.unit), language()),
          ]),
        )
      : h("p", {}, t("no_flows")),
  );
}

const FLOW_PERIODS = { month: 12, week: 12 };

// Per unit, what moved and how many exchanges, week by week or month by month.
async function flowCharts(context, unitOf, period) {
  const slug = context.membership.community;
  const series = await api.get(`/v1/communities/${slug}/flows/over-time?period=${period}&periods=${FLOW_PERIODS[period]}`);
  const locale = language();
  const short = new Intl.DateTimeFormat(locale, period === "month" ? { month: "short", timeZone: "UTC" } : { day: "numeric", month: "numeric", timeZone: "UTC" });
  const long = new Intl.DateTimeFormat(locale, { day: period === "week" ? "numeric" : undefined, month: "long", year: "numeric", timeZone: "UTC" });
  const whole = new Intl.NumberFormat(locale);
  const width = Math.min((document.querySelector("main")?.clientWidth || 360) - 32, 600);
  const units = [...new Set(series.items.map((point) => point.unit))];
  return units.map((code) => {
    const unit = unitOf(code);
    const points = series.items.filter((point) => point.unit === code);
    const when = (point) => ({
      label: short.format(new Date(point.starts_at)),
      long: period === "week" ? t("week_of", { date: long.format(new Date(point.starts_at)) }) : long.format(new Date(point.starts_at)),
    });
    const name = unit?.name || code;
    const header = t(period === "week" ? "week" : "month");
    if (points.every((point) => point.transactions === 0)) {
      return h("p", { class: "flow-unit" }, t(`no_flows_per_${period}`, { unit: name, count: points.length }));
    }
    return h("div", { class: "flow-unit" },
      barChart({
        id: `flow-volume-${code}`,
        title: t(`volume_per_${period}`, { unit: name }),
        points: points.map((point) => ({ ...when(point), value: point.total })),
        format: (value) => formatAmount(value, unit, locale),
        headers: [header, t("total")],
        step: unit.kind === "time" ? 60 : 10 ** unit.decimals,
        width,
      }),
      barChart({
        id: `flow-count-${code}`,
        title: t(`count_per_${period}`, { unit: name }),
        points: points.map((point) => ({ ...when(point), value: point.transactions })),
        format: (value) => whole.format(value),
        headers: [header, t("exchanges")],
        width,
      }));
  });
}

async function download(path, filename) {
  const response = await api.raw(path);
  const link = h("a", { href: URL.createObjectURL(await response.blob()), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
}

function exports(context) {
  const slug = context.membership.community;
  const month = h("input", { id: "export-month", type: "month", value: new Date().toISOString().slice(0, 7) });
  const run = async () => {
    const [year, number] = month.value.split("-").map(Number);
    const from = new Date(Date.UTC(year, number - 1, 1)).toISOString();
    const to = new Date(Date.UTC(year, number, 1)).toISOString();
    const query = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
    await download(`/v1/communities/${slug}/transactions.csv?${query}`, `${slug}-journal-${month.value}.csv`);
  };
  return h(
    "section",
    { "aria-labelledby": "exports" },
    h("h2", { id: "exports" }, t("exports")),
    h("div", { class: "field" }, h("label", { for: "export-month" }, t("month")), month),
    h("button", { type: "button", onclick: run, id: "export-journal" }, t("export_journal")),
  );
}

const partyName = (context, partyId) =>
  context.members.find((m) => m.party_id === partyId)?.display_name || partyId.slice(0, 8);

// Each pool's balance and its latest requests with the managers' decisions.
async function pools(context, unitOf) {
  const slug = context.membership.community;
  const amount = (value, code) => formatAmount(value, unitOf(code), language());
  const list = (await api.get(`/v1/communities/${slug}/pools`)).items;
  const requests = await Promise.all(list.map((pool) =>
    api.get(`/v1/communities/${slug}/pools/${pool.id}/requests?limit=${POOL_REQUESTS_READ}`)));
  return h("section", { "aria-labelledby": "pools-audit" },
    h("h2", { id: "pools-audit" }, t("pools")),
    list.length
      ? list.map((pool, index) => [
          h("p", {}, `${pool.name}: ${pool.units.map((u) => amount(u.balance, u.unit)).join(", ")}`),
          requests[index].items.length
            ? table(`${t("pool_requests")} ${pool.name}`, [t("member"), t("amount"), t("state"), t("decisions")],
                requests[index].items.map((r) => [
                  partyName(context, r.beneficiary),
                  amount(r.amount, r.unit),
                  t(`request_${r.state}`),
                  r.decisions.map((d) => `${partyName(context, d.manager)}: ${t(d.decision)}`).join(", ") || "—",
                ]))
            : null,
        ])
      : h("p", {}, t("no_pools")));
}

// Fees and dues charged and not paid, the overdue ones first.
async function dues(context, unitOf) {
  const slug = context.membership.community;
  const unpaid = (await api.get(`/v1/communities/${slug}/policies/dues?unpaid=true`)).items;
  unpaid.sort((a, b) => Number(b.overdue) - Number(a.overdue));
  const unitOfAccount = (id) => context.members.flatMap((m) => m.accounts).find((a) => a.id === id)?.unit;
  return h("section", { "aria-labelledby": "dues" },
    h("h2", { id: "dues" }, t("dues_unpaid")),
    unpaid.length
      ? table(t("dues_unpaid"), [t("member"), t("amount"), t("due_on"), t("state")], unpaid.map((due) => {
          const code = unitOfAccount(due.account);
          return [
            partyName(context, due.owner),
            code ? formatAmount(due.amount, unitOf(code), language()) : String(due.amount),
            due.due_on ? formatDate(due.due_on, language()) : "—",
            due.overdue ? t("overdue") : t("unpaid"),
          ];
        }))
      : h("p", {}, t("no_dues")));
}

// Each euro-backed currency: what circulates equals the reserve plus the fees.
async function reserves(context, unitOf) {
  const slug = context.membership.community;
  const currencies = context.community.units.filter((unit) => unit.kind === "currency");
  const backed = (await Promise.all(currencies.map((unit) =>
    api.get(`/v1/communities/${slug}/currencies/${unit.code}`).catch((error) => {
      if (error instanceof api.ApiError && error.code === "unknown_currency") return null;
      throw error;
    })))).filter(Boolean);
  if (!backed.length) return null;
  const euros = (cents) => formatAmount(cents, { kind: "currency", decimals: 2, code: "€" }, language());
  return h("section", { "aria-labelledby": "reserve" },
    h("h2", { id: "reserve" }, t("reserve")),
    table(t("reserve"), [t("unit"), t("circulation"), t("reserve_held"), t("fees"), t("check")], backed.map((c) => [
      unitOf(c.unit)?.name || c.unit,
      formatAmount(c.circulation, unitOf(c.unit), language()),
      euros(c.reserve),
      euros(c.fees),
      c.circulation === c.reserve + c.fees ? t("reserve_ok") : t("reserve_wrong"),
    ])));
}

// Members without an exchange for INACTIVE_DAYS: whom a coordinator calls.
async function inactive(context) {
  const slug = context.membership.community;
  const page = await api.get(`/v1/communities/${slug}/members/inactive?days=${INACTIVE_DAYS}&limit=${INACTIVE_READ}`);
  return h("section", { "aria-labelledby": "inactive" },
    h("h2", { id: "inactive" }, t("inactive", { days: INACTIVE_DAYS })),
    page.items.length
      ? table(t("inactive", { days: INACTIVE_DAYS }), [t("member"), t("last_exchange")], page.items.map((member) => [
          member.display_name,
          member.last_exchange_at ? formatDate(member.last_exchange_at, language()) : t("never"),
        ]))
      : h("p", {}, t("none_inactive")));
}

// The latest checkpoint, and the log verified on this phone on demand.
async function logSection(context) {
  const slug = context.membership.community;
  const checkpoint = await api.get(`/v1/communities/${slug}/log/checkpoint`);
  const result = h("p", { id: "verify-result", role: "status" });
  const run = async () => {
    mount(result, t("verifying"));
    try {
      const outcome = await verifyLog(slug);
      result.className = outcome.ok ? "" : "error";
      mount(result, outcome.ok ? t("log_ok", { size: outcome.size }) : t(`log_${outcome.problem}`, { size: outcome.size }));
    } catch (error) {
      result.className = "error";
      mount(result, t("error", { code: error.code || error.message }));
    }
  };
  return h("section", { "aria-labelledby": "log" },
    h("h2", { id: "log" }, t("log_title")),
    h("p", {}, t("checkpoint", { size: checkpoint.tree_size, date: formatDate(checkpoint.created_at, language()) })),
    h("p", { class: "small link" }, checkpoint.root_hash),
    h("button", { type: "button", onclick: run }, t("verify_now")),
    result);
}

export async function auditScreen(context, unitOf) {
  const slug = context.membership.community;
  const balance = await api.get(`/v1/communities/${slug}/trial-balance`);
  // A section that cannot be read now (the log's first checkpoint still being
  // signed, say) says so in its place; the others are shown.
  const guarded = (work) =>
    work.catch((error) => h("p", { class: "error" }, t("error", { code: error.code || error.message })));
  const sections = await Promise.all([
    nearLimits(context, unitOf),
    flows(context, unitOf),
    pools(context, unitOf),
    dues(context, unitOf),
    reserves(context, unitOf),
    inactive(context),
    logSection(context),
  ].map(guarded));
  return [
    h("h1", { tabindex: "-1", id: "title" }, t("audit_title")),
    trialBalance(balance, unitOf),
    ...sections,
    exports(context),
    context.membership.role === "admin" ? adminSection(context, unitOf) : null,
  ];
}
