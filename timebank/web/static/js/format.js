// Amounts are integers in the unit's smallest step (minutes, cents): they are shown
// without ever going through a float, as "3 h 30" and "12,50 G" in French.

const NO_BREAK = "\u00a0";
const MINUS = "\u2212";

export function formatAmount(value, unit, locale) {
  const sign = value < 0 ? MINUS : "";
  const magnitude = Math.abs(value);
  const whole = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  if (unit.kind === "time") {
    const hours = Math.floor(magnitude / 60);
    const minutes = magnitude % 60;
    const text = `${whole.format(hours)}${NO_BREAK}h`;
    return sign + (minutes ? `${text}${NO_BREAK}${String(minutes).padStart(2, "0")}` : text);
  }
  const scale = 10 ** unit.decimals;
  let text = whole.format(Math.floor(magnitude / scale));
  if (unit.decimals > 0) {
    text += decimalSeparator(locale) + String(magnitude % scale).padStart(unit.decimals, "0");
  }
  return `${sign}${text}${NO_BREAK}${unit.code}`;
}

function decimalSeparator(locale) {
  const part = new Intl.NumberFormat(locale).formatToParts(1.5).find((p) => p.type === "decimal");
  return part ? part.value : ".";
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
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(iso),
  );
}
