// A bar chart drawn as inline SVG by our own few lines (no chart library to
// download): a title, a value axis with its labels in the reader's format, a label
// under the bars, and the same figures as a table that screen readers read (the
// drawing itself is hidden from them: it says nothing the table does not).
//
// Laid out in CSS pixels at the width it is given and at the page's text size, so
// that its labels grow with the text (200% text reads as well as 100%).

import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH_DEFAULT_PX = 340;
const TEXT_PX_AT_100 = 14;
const BAR_HEIGHT_MAX_PX = 160;
const VALUE_TICKS = 4;

function svg(tag, attributes, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child instanceof Node ? child : String(child));
  return element;
}

// The page's text size against the usual 16 px: 2 at 200% text.
function textScale() {
  const rootPx = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
  return rootPx / 16;
}

// Round steps for the value axis: 1, 2 or 5 times a power of ten, at least `step`
// (a unit's own step, an hour say, so that an hour axis reads 1 h, 2 h...).
export function niceStep(maximum, step = 1) {
  const rough = Math.max(step, maximum / VALUE_TICKS);
  let power = step;
  while (power * 10 <= rough) power *= 10;
  for (const factor of [1, 2, 5, 10]) {
    if (power * factor >= rough) return power * factor;
  }
  return power * 10;
}

// points: [{ label, value }] with integer values >= 0; format(value) gives the
// value's text in the reader's language; step: the value axis's least step.
export function barChart({ id, title, points, format, headers, step = 1, width = WIDTH_DEFAULT_PX }) {
  const scale = textScale();
  const textPx = TEXT_PX_AT_100 * scale;
  const maximum = Math.max(...points.map((p) => p.value), 0);
  const tick = niceStep(maximum, step);
  const top = Math.max(tick, Math.ceil(maximum / tick) * tick);
  const ticks = Array.from({ length: Math.round(top / tick) + 1 }, (_, n) => n * tick);
  const axisWidth = Math.max(...ticks.map((v) => format(v).length)) * textPx * 0.6 + 8;
  const plotLeft = Math.ceil(axisWidth);
  const plotTop = Math.ceil(textPx);
  const plotHeight = BAR_HEIGHT_MAX_PX * Math.min(scale, 1.5);
  // Room on the right for half of the last label, centred under its bar.
  const plotWidth = Math.max(width - plotLeft - textPx, 40);
  const slot = plotWidth / Math.max(points.length, 1);
  // Labels under the bars, no closer than their own width: every n-th at 200% text.
  const labelWidth = Math.max(...points.map((p) => p.label.length), 1) * textPx * 0.6 + 6;
  const every = Math.max(1, Math.ceil(labelWidth / slot));
  const height = plotTop + plotHeight + textPx * 1.8;
  const y = (value) => plotTop + plotHeight - (value / top) * plotHeight;
  const drawing = svg("svg", { viewBox: `0 0 ${width} ${Math.ceil(height)}`, width, height: Math.ceil(height), class: "chart", "aria-hidden": "true", focusable: "false" },
    ...ticks.map((value) => svg("g", {},
      svg("line", { x1: plotLeft, x2: plotLeft + plotWidth, y1: y(value), y2: y(value), class: "grid" }),
      svg("text", { x: plotLeft - 6, y: y(value) + textPx * 0.35, "text-anchor": "end", "font-size": textPx }, format(value)))),
    ...points.map((point, index) => {
      const barHeight = (point.value / top) * plotHeight;
      const x = plotLeft + index * slot;
      return svg("g", {},
        svg("rect", { x: x + slot * 0.15, y: y(point.value), width: slot * 0.7, height: barHeight, class: "bar" }),
        index % every === (points.length - 1) % every
          ? svg("text", { x: x + slot / 2, y: plotTop + plotHeight + textPx * 1.3, "text-anchor": "middle", "font-size": textPx }, point.label)
          : "");
    }),
    svg("line", { x1: plotLeft, x2: plotLeft + plotWidth, y1: y(0), y2: y(0), class: "axis" }));
  return h("figure", { class: "figure", "aria-labelledby": `${id}-title` },
    h("figcaption", { id: `${id}-title`, class: "chart-title" }, title),
    drawing,
    // A table is never narrower than its content: the box that hides it is a div.
    h("div", { class: "visually-hidden" }, h("table", {},
      h("caption", {}, title),
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, points.map((point) =>
        h("tr", {}, h("th", { scope: "row" }, point.long || point.label), h("td", {}, format(point.value))))))));
}
