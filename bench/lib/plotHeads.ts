// The bench:heads figure: peak WASM heap, peak RSS and step time against the identity count N, three
// log-log panels, one line per head, failed configurations marked with a cross at the top of each
// panel. Plain SVG (no plotting dependency); the PNG is rendered from it by sharp.
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

export interface PlotRow {
  head: string;
  n: number;
  ok: boolean;
  stepMs: number | null;
  heapBytes: number | null;
  rssBytes: number | null;
}

/** Reference measurements drawn as hollow markers on a dashed line (null value = failed there). */
export interface ReferenceSeries {
  /** Head whose colour the series borrows. */
  head: string;
  label: string;
  points: { n: number; stepMs: number | null }[];
}

export interface HeadsFigureOptions {
  title: string;
  subtitle?: string;
  /** Horizontal limit lines per panel, e.g. the 4 GiB WASM heap. */
  heapLimitBytes?: number;
  /** Title of the first panel (default 'Peak WASM heap'; backend torch plots its libtorch memory). */
  memoryTitle?: string;
  ramBytes?: number;
  references?: ReferenceSeries[];
  /** Legend text per head id (default: the id). */
  labels?: Record<string, string>;
}

const PALETTE = ['#d62728', '#ff7f0e', '#8c564b', '#1f77b4', '#2ca02c', '#9467bd', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
const FONT = 'DejaVu Sans, Arial, sans-serif';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** "10k", "500k", "1M", "2.06M". */
export function formatCount(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(n);
}

function formatBytesShort(b: number): string {
  if (b >= 2 ** 30) return `${+(b / 2 ** 30).toFixed(1)} GiB`;
  return `${+(b / 2 ** 20).toFixed(0)} MiB`;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${+ms.toFixed(1)} ms`;
}

interface Panel {
  title: string;
  value: (r: PlotRow) => number | null;
  ticks: (lo: number, hi: number) => number[];
  format: (v: number) => string;
  limit?: { value: number; label: string };
  withReferences?: boolean;
}

/** Powers of 4 (or of 2, when that leaves fewer than 3) times 1 MiB covering [lo, hi]. */
function byteTicks(lo: number, hi: number): number[] {
  const powers = (factor: number) => {
    const out: number[] = [];
    for (let v = 2 ** 20; v <= hi * 1.01; v *= factor) if (v >= lo * 0.99) out.push(v);
    return out;
  };
  const coarse = powers(4);
  return coarse.length >= 3 ? coarse : powers(2);
}

/** 1-2-5 ticks in ms covering [lo, hi], thinned to at most ~8, or 1..9 per decade on a narrow range. */
function timeTicks(lo: number, hi: number): number[] {
  const ticks = (mantissas: number[]) => {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
      for (const m of mantissas) {
        const v = m * 10 ** e;
        if (v >= lo * 0.99 && v <= hi * 1.01) out.push(v);
      }
    return out;
  };
  const out = ticks([1, 2, 5]);
  if (out.length < 3) return ticks([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  return out.length > 8 ? out.filter((v) => /^1/.test(String(v))) : out;
}

/** Log range [lo, hi] around the values, padded by a fraction of a decade on each side. */
function logRange(values: number[], pad = 0.12): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    lo /= 2;
    hi *= 2;
  }
  const span = Math.log10(hi) - Math.log10(lo);
  return [lo / 10 ** (span * pad), hi * 10 ** (span * pad)];
}

/** The whole figure as an SVG document. */
export function headsFigureSvg(rows: PlotRow[], opts: HeadsFigureOptions): string {
  const heads = [...new Set(rows.map((r) => r.head))];
  const colour = (h: string) => PALETTE[Math.max(0, heads.indexOf(h)) % PALETTE.length];
  const refs = opts.references ?? [];
  const ns = [...new Set([...rows.map((r) => r.n), ...refs.flatMap((s) => s.points.map((p) => p.n))])].sort((a, b) => a - b);
  const [xLo, xHi] = logRange(ns, 0.08);

  const panels: Panel[] = [
    {
      title: opts.memoryTitle ?? 'Peak WASM heap',
      value: (r) => r.heapBytes,
      ticks: byteTicks,
      format: formatBytesShort,
      limit: opts.heapLimitBytes ? { value: opts.heapLimitBytes, label: 'wasm32 limit' } : undefined,
    },
    {
      title: 'Peak process RSS',
      value: (r) => r.rssBytes,
      ticks: byteTicks,
      format: formatBytesShort,
      limit: opts.ramBytes ? { value: opts.ramBytes, label: 'machine RAM' } : undefined,
    },
    { title: 'Head step time (B=128, D=512)', value: (r) => r.stepMs, ticks: timeTicks, format: formatMs, withReferences: true },
  ];

  const panelW = 460;
  const panelH = 380;
  const left = 80;
  const gap = 90; // room for the next panel's y labels
  const W = 2 * left - 40 + 3 * panelW + 2 * gap;
  const top = 90;
  const legendTop = top + panelH + 70;
  const H = legendTop + 30 + 22 * Math.ceil((heads.length + (refs.length ? 2 : 1)) / 3);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="30" text-anchor="middle" font-size="20" font-weight="bold">${esc(opts.title)}</text>`);
  if (opts.subtitle) out.push(`<text x="${W / 2}" y="54" text-anchor="middle" font-size="13" fill="#444">${esc(opts.subtitle)}</text>`);

  panels.forEach((p, pi) => {
    const x0 = left + pi * (panelW + gap);
    const y0 = top;
    const okVals = rows.filter((r) => r.ok && p.value(r) !== null).map((r) => p.value(r)!);
    const refVals = p.withReferences ? refs.flatMap((s) => s.points.filter((q) => q.stepMs !== null).map((q) => q.stepMs!)) : [];
    const all = [...okVals, ...refVals, ...(p.limit ? [p.limit.value] : [])];
    const [yLo, yHi] = all.length ? logRange(all) : [1, 10];
    const sx = (n: number) => x0 + ((Math.log10(n) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo))) * panelW;
    const sy = (v: number) => y0 + panelH - ((Math.log10(v) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * panelH;

    out.push(`<g>`);
    out.push(`<text x="${x0 + panelW / 2}" y="${y0 - 14}" text-anchor="middle" font-size="15" font-weight="bold">${esc(p.title)}</text>`);
    out.push(`<rect x="${x0}" y="${y0}" width="${panelW}" height="${panelH}" fill="#fafafa" stroke="#888"/>`);
    for (const t of p.ticks(yLo, yHi)) {
      const y = sy(t);
      out.push(`<line x1="${x0}" x2="${x0 + panelW}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
      out.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end" font-size="11">${esc(p.format(t))}</text>`);
    }
    for (const n of ns) {
      const x = sx(n);
      out.push(`<line x1="${x}" x2="${x}" y1="${y0}" y2="${y0 + panelH}" stroke="#ddd"/>`);
      out.push(`<text x="${x}" y="${y0 + panelH + 16}" text-anchor="middle" font-size="11">${formatCount(n)}</text>`);
    }
    out.push(`<text x="${x0 + panelW / 2}" y="${y0 + panelH + 36}" text-anchor="middle" font-size="12">identities N (log scale)</text>`);
    if (p.limit) {
      const y = sy(p.limit.value);
      out.push(`<line x1="${x0}" x2="${x0 + panelW}" y1="${y}" y2="${y}" stroke="#000" stroke-dasharray="6 4"/>`);
      out.push(`<text x="${x0 + 6}" y="${y - 5}" font-size="11">${esc(`${p.limit.label} ${p.format(p.limit.value)}`)}</text>`);
    }
    if (p.withReferences) {
      for (const s of refs) {
        const c = colour(s.head);
        const pts = s.points.filter((q) => q.stepMs !== null);
        if (pts.length > 1)
          out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" stroke-dasharray="5 4" points="${pts.map((q) => `${sx(q.n)},${sy(q.stepMs!)}`).join(' ')}"/>`);
        for (const q of pts) out.push(`<circle cx="${sx(q.n)}" cy="${sy(q.stepMs!)}" r="5" fill="#fff" stroke="${c}" stroke-width="2"/>`);
        for (const q of s.points.filter((q) => q.stepMs === null)) out.push(cross(sx(q.n), y0 + panelH - 12, 6, c, 1.5, true));
      }
    }
    heads.forEach((h, hi) => {
      const c = colour(h);
      const mine = rows.filter((r) => r.head === h).sort((a, b) => a.n - b.n);
      const good = mine.filter((r) => r.ok && p.value(r) !== null);
      if (good.length > 1) out.push(`<polyline fill="none" stroke="${c}" stroke-width="2.5" points="${good.map((r) => `${sx(r.n)},${sy(p.value(r)!)}`).join(' ')}"/>`);
      for (const r of good) out.push(`<circle cx="${sx(r.n)}" cy="${sy(p.value(r)!)}" r="4" fill="${c}"/>`);
      // failures: a cross at the top of the panel, one row per head so coinciding ones stay visible
      for (const r of mine.filter((r) => !r.ok)) out.push(cross(sx(r.n), y0 + 12 + hi * 13, 5, c, 2.5, false));
    });
    out.push(`</g>`);
  });

  // legend
  const items: { kind: 'line' | 'cross' | 'ref'; label: string; colour: string }[] = heads.map((h) => ({ kind: 'line', label: opts.labels?.[h] ?? h, colour: colour(h) }));
  items.push({ kind: 'cross', label: 'failed (out of memory / error), drawn at the top of each panel', colour: '#333' });
  if (refs.length) items.push({ kind: 'ref', label: 'PyTorch 1.13 CPU reference, same algorithm (hollow, dashed; cross at the bottom = killed)', colour: '#333' });
  const colW = (W - 2 * left) / 3;
  out.push(`<text x="${left}" y="${legendTop}" font-size="13" font-weight="bold">Heads</text>`);
  items.forEach((it, i) => {
    const lx = left + (i % 3) * colW;
    const ly = legendTop + 22 + Math.floor(i / 3) * 22;
    if (it.kind === 'line') out.push(`<line x1="${lx}" x2="${lx + 28}" y1="${ly - 4}" y2="${ly - 4}" stroke="${it.colour}" stroke-width="3"/><circle cx="${lx + 14}" cy="${ly - 4}" r="4" fill="${it.colour}"/>`);
    else if (it.kind === 'cross') out.push(cross(lx + 14, ly - 4, 5, it.colour, 2.5, false));
    else out.push(`<line x1="${lx}" x2="${lx + 28}" y1="${ly - 4}" y2="${ly - 4}" stroke="${it.colour}" stroke-dasharray="5 4"/><circle cx="${lx + 14}" cy="${ly - 4}" r="5" fill="#fff" stroke="${it.colour}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 36}" y="${ly}" font-size="12">${esc(it.label)}</text>`);
  });
  out.push(`</svg>`);
  return out.join('\n');
}

function cross(x: number, y: number, r: number, colour: string, width: number, dashed: boolean): string {
  const d = dashed ? ' stroke-dasharray="2 2"' : '';
  return `<path d="M${x - r} ${y - r}L${x + r} ${y + r}M${x - r} ${y + r}L${x + r} ${y - r}" stroke="${colour}" stroke-width="${width}"${d}/>`;
}

/** Writes `<base>.svg` and `<base>.png` (creating the folder); returns both paths. */
export async function writeFigure(svg: string, base: string): Promise<{ svg: string; png: string }> {
  fs.mkdirSync(path.dirname(base), { recursive: true });
  const svgPath = `${base}.svg`;
  const pngPath = `${base}.png`;
  fs.writeFileSync(svgPath, svg);
  await sharp(Buffer.from(svg)).png().toFile(pngPath);
  return { svg: svgPath, png: pngPath };
}
