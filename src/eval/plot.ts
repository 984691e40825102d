// ROC figure as hand-written SVG (and PNG through sharp's SVG rasteriser): log-scale FAR axis from the
// smallest FAR the negative pairs can resolve (1/#negatives) to 1, TAR axis, grid, legend with one
// entry per set.
import { writeFileSync, renameSync } from 'node:fs';
import { extname } from 'node:path';
import sharp from 'sharp';
import { AttfcError } from '../errors.js';

/** One curve of the figure. */
export interface RocSeries {
  /** Set name, the first legend column, e.g. 'lfw'. */
  name: string;
  /** Second legend column, e.g. 'acc 99.78%   AUC 0.9991'. */
  detail?: string;
  fpr: ArrayLike<number>;
  tpr: ArrayLike<number>;
  /** Negative pairs behind the curve: no FAR below 1/negatives can be measured on them. */
  negatives?: number;
}

export interface RocPlotOptions {
  title?: string;
  /** Lowest TAR shown; default: from the data, rounded down to a tenth. */
  yMin?: number;
  /** Smallest FAR shown (default: smallestResolvableFar of the series). */
  xMin?: number;
  width?: number;
  height?: number;
}

// Colour-blind-safe palette (Okabe-Ito, then Tableau) with enough contrast on white.
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#7F7F7F', '#8C564B', '#BCBD22', '#17BECF'];
const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}

/**
 * Where the FAR axis starts: 1/n for the largest negative-pair count n among the series (below that no
 * curve has a point), at most 0.1 so that at least one decade shows; 1e-6 (the IJB protocols' lowest
 * FAR) when no series gives its count.
 */
export function smallestResolvableFar(series: readonly RocSeries[]): number {
  const n = Math.max(0, ...series.map((s) => s.negatives ?? 0));
  return n > 0 ? Math.min(0.1, 1 / n) : 1e-6;
}

/** Lowest TAR among the visible points, rounded down to 0.1 (at most 0.9). */
function autoYMin(series: readonly RocSeries[], xMin: number): number {
  let lo = 1;
  for (const s of series)
    for (let i = 0; i < s.fpr.length; i++) if (s.fpr[i] >= xMin && s.tpr[i] < lo) lo = s.tpr[i];
  return Math.max(0, Math.min(0.9, Math.floor(lo * 10 - 1e-9) / 10));
}

/** Renders the ROC curves of all sets in one SVG figure. */
export function renderRocSvg(series: readonly RocSeries[], options: RocPlotOptions = {}): string {
  const W = options.width ?? 820;
  const H = options.height ?? 560;
  const xMin = Math.min(0.1, options.xMin ?? smallestResolvableFar(series));
  const negatives = Math.max(0, ...series.map((s) => s.negatives ?? 0));
  const axisNote = negatives > 0 && xMin === 1 / negatives ? `; starts at 1/${negatives} negative pairs` : '';
  const lo = Math.log10(xMin); // the axis spans log10 FAR from lo to 0
  const yMin = options.yMin ?? autoYMin(series, xMin);
  const m = { left: 78, right: 28, top: 58, bottom: 66 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const X = (f: number) => m.left + ((Math.log10(Math.max(f, xMin)) - lo) / -lo) * pw;
  const Y = (t: number) => m.top + (1 - (t - yMin) / (1 - yMin)) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<defs><clipPath id="plot"><rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}"/></clipPath></defs>`,
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="#fafbfc"/>`,
  );
  // grid: minor lines at 2..9 x 10^k, major at decades; TAR lines every 0.02, 0.05 or 0.1
  for (let d = Math.floor(lo); d < 0; d++)
    for (let k = 2; k <= 9; k++) {
      if (k * 10 ** d < xMin) continue;
      const x = fmt(X(k * 10 ** d));
      out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#eceff3" stroke-width="1"/>`);
    }
  const yStep = 1 - yMin <= 0.12 ? 0.02 : 1 - yMin <= 0.3 ? 0.05 : 0.1;
  const yTicks: number[] = [];
  for (let i = 0; ; i++) {
    const t = Math.round((yMin + i * yStep) * 1000) / 1000;
    if (t > 1 + 1e-9) break;
    yTicks.push(t);
  }
  for (const t of yTicks) {
    const y = fmt(Y(t));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#dde2e8" stroke-width="1"/>`);
    out.push(`<text x="${m.left - 8}" y="${y}" dy="0.35em" text-anchor="end" font-size="12" fill="#333">${t.toFixed(yStep < 0.1 ? 2 : 1)}</text>`);
  }
  for (let d = Math.ceil(lo - 1e-9); d <= 0; d++) {
    const x = fmt(X(10 ** d));
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#cfd6de" stroke-width="1"/>`);
    const label = d === 0 ? '1' : `10<tspan dy="-6" font-size="9">${d < 0 ? '\u2212' : ''}${Math.abs(d)}</tspan>`;
    out.push(`<text x="${x}" y="${m.top + ph + 20}" text-anchor="middle" font-size="12" fill="#333">${label}</text>`);
  }
  // curves, decimated to points at least ~0.4 px apart on screen
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts: string[] = [];
    let lx = -1e9;
    let ly = -1e9;
    for (let k = 0; k < s.fpr.length; k++) {
      const x = X(s.fpr[k]);
      const y = Y(s.tpr[k]);
      const last = k === s.fpr.length - 1;
      if (!last && Math.abs(x - lx) < 0.4 && Math.abs(y - ly) < 0.4) continue;
      pts.push(`${fmt(x)},${fmt(y)}`);
      lx = x;
      ly = y;
    }
    out.push(
      `<polyline clip-path="url(#plot)" points="${pts.join(' ')}" fill="none" stroke="${colour}" stroke-width="2.2" stroke-linejoin="round" stroke-linecap="round"/>`,
    );
  });
  // frame, axis labels, title
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#5b6570" stroke-width="1.2"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 18}" text-anchor="middle" font-size="14" fill="#222">False accept rate (FAR, log scale${axisNote})</text>`);
  out.push(
    `<text transform="translate(22 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="14" fill="#222">True accept rate (TAR)</text>`,
  );
  out.push(`<text x="${m.left + pw / 2}" y="34" text-anchor="middle" font-size="18" font-weight="bold" fill="#111">${esc(options.title ?? 'ROC')}</text>`);
  // legend in the lower right corner, where ROC curves leave room
  if (series.length > 0) {
    const rowH = 22;
    const charW = 7.4; // rough advance of a 12.5px DejaVu Sans glyph
    const nameW = Math.max(...series.map((s) => s.name.length)) * (charW + 1) + 14; // bold is wider
    const detailW = Math.max(0, ...series.map((s) => (s.detail ?? '').length)) * charW;
    const lw = Math.min(pw - 20, 54 + nameW + detailW);
    const lh = 12 + series.length * rowH;
    const lx0 = m.left + pw - lw - 12;
    const ly0 = m.top + ph - lh - 12;
    out.push(`<rect x="${fmt(lx0)}" y="${fmt(ly0)}" width="${fmt(lw)}" height="${lh}" rx="4" fill="#ffffff" fill-opacity="0.92" stroke="#c4ccd4"/>`);
    series.forEach((s, i) => {
      const y = ly0 + 6 + rowH * i + rowH / 2;
      const colour = COLOURS[i % COLOURS.length];
      out.push(`<line x1="${fmt(lx0 + 10)}" y1="${fmt(y)}" x2="${fmt(lx0 + 36)}" y2="${fmt(y)}" stroke="${colour}" stroke-width="3" stroke-linecap="round"/>`);
      out.push(`<text x="${fmt(lx0 + 44)}" y="${fmt(y)}" dy="0.35em" font-size="12.5" font-weight="bold" fill="#222">${esc(s.name)}</text>`);
      if (s.detail)
        out.push(
          `<text x="${fmt(lx0 + 44 + nameW)}" y="${fmt(y)}" dy="0.35em" font-size="12.5" fill="#333" xml:space="preserve">${esc(s.detail)}</text>`,
        );
    });
  }
  out.push('</svg>');
  return out.join('\n');
}

/** Writes the figure to `path`: .svg as text, .png rasterised at 2x by sharp (SVG density 72 -> 144 dpi). Written atomically. */
export async function writeRocPlot(path: string, series: readonly RocSeries[], options: RocPlotOptions = {}): Promise<void> {
  const ext = extname(path).toLowerCase();
  if (ext !== '.svg' && ext !== '.png') throw new AttfcError(`--plot ${path}: expected a .svg or .png file name`);
  const svg = renderRocSvg(series, options);
  const data = ext === '.svg' ? Buffer.from(svg) : await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
