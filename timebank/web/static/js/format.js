// Amounts are integers in the unit's smallest step (minutes, cents): they are shown
// without ever going through a float, as "3 h 30" and "12,50 G" in French.

const NO_BREAK = "\u00a0";
const MINUS = "\u2212";

// Making an Intl formatter costs far more than using one (several milliseconds on a
// slow phone): each is made once per locale and kept.
const formatters = new Map();

function formatter(kind, locale, options, make) {
  const key = `${kind} ${locale}`;
  let made = formatters.get(key);
  if (!made) {
    made = make(locale, options);
    formatters.set(key, made);
  }
  return made;
}

// The app's own languages write numbers under 1,000 in plain Latin digits and
// have these decimal separators: most amounts are shown without making any
// formatter at all (the first one made on a page costs tens of milliseconds on a
// slow phone, loading the locale's data). Any other locale asks Intl.
const OWN_DECIMAL_SEPARATORS = { en: ".", fr: "," };
const PLAIN_BELOW = 1000;

function wholeNumber(value, locale) {
  if (value < PLAIN_BELOW && locale in OWN_DECIMAL_SEPARATORS) return String(value);
  const whole = formatter("whole", locale, { maximumFractionDigits: 0 }, (l, o) => new Intl.NumberFormat(l, o));
  return whole.format(value);
}

export function formatAmount(value, unit, locale) {
  const sign = value < 0 ? MINUS : "";
  const magnitude = Math.abs(value);
  if (unit.kind === "time") {
    const hours = Math.floor(magnitude / 60);
    const minutes = magnitude % 60;
    const text = `${wholeNumber(hours, locale)}${NO_BREAK}h`;
    return sign + (minutes ? `${text}${NO_BREAK}${String(minutes).padStart(2, "0")}` : text);
  }
  const scale = 10 ** unit.decimals;
  let text = wholeNumber(Math.floor(magnitude / scale), locale);
  if (unit.decimals > 0) {
    text += decimalSeparator(locale) + String(magnitude % scale).padStart(unit.decimals, "0");
  }
  return `${sign}${text}${NO_BREAK}${unit.code}`;
}

const separators = new Map();

function decimalSeparator(locale) {
  if (locale in OWN_DECIMAL_SEPARATORS) return OWN_DECIMAL_SEPARATORS[locale];
  if (!separators.has(locale)) {
    const parts = new Intl.NumberFormat(locale).formatToParts(1.5);
    separators.set(locale, parts.find((p) => p.type === "decimal")?.value ?? ".");
  }
  return separators.get(locale);
}

// "12,5" or "12.50" in the smallest step (1250), or null when it is not such a number.
export function parseAmount(text, decimals) {
  const match = /^\s*(\d{1,12})(?:[.,](\d*))?\s*$/.exec(text);
  if (!match || (match[2] || "").length > decimals) return null;
  const fraction = (match[2] || "").padEnd(decimals, "0");
  const value = Number(match[1]) * 10 ** decimals + Number(fraction || "0");
  return Number.isSafeInteger(value) && value > 0 ? value : null;
}

export function formatDate(iso, locale) {
  const dates = formatter("date", locale, { dateStyle: "medium", timeStyle: "short" },
    (l, o) => new Intl.DateTimeFormat(l, o));
  return dates.format(new Date(iso));
}
