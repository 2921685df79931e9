'use strict';
// Two plain SVG charts for the benchmark report (no dependency: a chart library would be
// bigger than the benchmark).
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
const COLORS = ['#2b7a3d', '#6fbf73', '#1f5fa8', '#7aa6da', '#b85c00', '#e0a060'];
const FONT = 'font-family="sans-serif"';
const TITLE = `${FONT} font-size="14" font-weight="bold"`;
const SMALL = `${FONT} font-size="10" fill="#666"`;

function svg(width, height, body) {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n<rect width="100%" height="100%" fill="white"/>\n${body.join('\n')}\n</svg>\n`;
}

/** Horizontal bars, one per item; baton's in green. `log`: bar length ~ log10(1 + value). */
function barChart({ title, items, log = false }) {
  const labelW = 240;
  const barW = 400;
  const row = 24;
  const top = 40;
  const width = labelW + barW + 90;
  const height = top + items.length * row + 20;
  const max = Math.max(1, ...items.map((i) => i.value));
  const scale = (v) => (log ? Math.log10(1 + v) / Math.log10(1 + max) : v / max) * barW;
  const body = [`<text x="10" y="22" ${TITLE}>${esc(title)}</text>`];
  items.forEach((it, i) => {
    const y = top + i * row;
    const w = Math.max(it.value > 0 ? 2 : 0, scale(it.value));
    body.push(`<text x="${labelW - 8}" y="${y + 15}" ${FONT} font-size="12" text-anchor="end">${esc(it.label)}</text>`);
    body.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${row - 8}" fill="${it.baton ? COLORS[0] : '#9a9a9a'}"/>`);
    body.push(`<text x="${labelW + w + 6}" y="${y + 15}" ${FONT} font-size="12"${it.baton ? ' font-weight="bold"' : ''}>${Math.round(it.value).toLocaleString('en-US')}</text>`);
  });
  if (log) body.push(`<text x="${labelW}" y="${height - 4}" ${SMALL}>bar length on a log scale</text>`);
  return svg(width, height, body);
}

/** Lines over a linear x axis, a tick at each x that has a point. */
function lineChart({ title, xLabel, series }) {
  const width = 720;
  const height = 380;
  const m = { left: 70, right: 190, top: 40, bottom: 50 };
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const ymax = niceMax(Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1]).filter(Number.isFinite))));
  // a linear x axis from 0, so linear growth looks like a straight line
  const px = (x) => m.left + (x / xs[xs.length - 1]) * (width - m.left - m.right);
  const py = (y) => height - m.bottom - (y / ymax) * (height - m.top - m.bottom);
  const body = [`<text x="10" y="22" ${TITLE}>${esc(title)}</text>`];
  for (let i = 0; i <= 5; i++) {
    const y = (ymax * i) / 5;
    body.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`);
    body.push(`<text x="${m.left - 6}" y="${py(y) + 4}" ${FONT} font-size="12" text-anchor="end">${Math.round(y).toLocaleString('en-US')}</text>`);
  }
  for (const x of xs) body.push(`<text x="${px(x)}" y="${height - m.bottom + 18}" ${FONT} font-size="12" text-anchor="middle">${x}</text>`);
  body.push(`<text x="${(m.left + width - m.right) / 2}" y="${height - 10}" ${FONT} font-size="12" text-anchor="middle">${esc(xLabel)}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    body.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${px(p[0])},${py(p[1]).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) body.push(`<circle cx="${px(p[0])}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${c}"/>`);
    const ly = m.top + 10 + i * 20;
    body.push(`<line x1="${width - m.right + 15}" x2="${width - m.right + 35}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/>`);
    body.push(`<text x="${width - m.right + 40}" y="${ly + 4}" ${FONT} font-size="12">${esc(s.label)}</text>`);
  });
  return svg(width, height, body);
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}

module.exports = { barChart, lineChart };
