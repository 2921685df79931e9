'use strict';
// min / median / max of a list of numbers, and how to print them (and a table's head).
function summary(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { n: 0, min: NaN, median: NaN, max: NaN };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { n: v.length, min: v[0], median, max: v[v.length - 1] };
}

/** "12.3 (11.0–14.1)": median, then min–max; `digits` decimals. */
function fmt(s, digits = 0, unit = '') {
  if (!s || s.n === 0) return '–';
  const f = (x) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  if (s.n === 1 || s.min === s.max) return `${f(s.median)}${unit}`;
  return `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)})`;
}

/** A markdown table's header and separator lines, the separator sized from the columns. */
const head = (...cols) => [`| ${cols.join(' | ')} |`, `|${'---|'.repeat(cols.length)}`];

module.exports = { summary, fmt, head };
