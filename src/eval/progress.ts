// Progress reporting on stderr: a redrawn bar on a terminal, a plain line every 10% otherwise.

/** Callback shape used by evaluateBin / evaluateIjb / embedImageFiles. */
export type ProgressFn = (done: number, total: number) => void;

export interface ProgressOptions {
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  /** Unit shown after the counts (default 'images'). */
  unit?: string;
  now?: () => number;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A progress callback labelled `label`, e.g. 'lfw'. */
export function createProgress(label: string, options: ProgressOptions = {}): ProgressFn {
  const stream = options.stream ?? process.stderr;
  const unit = options.unit ?? 'images';
  const now = options.now ?? (() => Date.now());
  const start = now();
  const tty = Boolean(stream.isTTY);
  let lastDraw = 0;
  let lastDecile = -1;
  return (done, total) => {
    const t = now();
    const secs = Math.max(1e-3, (t - start) / 1000);
    const rate = done / secs;
    const frac = total > 0 ? done / total : 1;
    const finished = done >= total;
    const stats = `${done}/${total} ${unit}  ${rate.toFixed(1)}/s`;
    if (tty) {
      if (!finished && t - lastDraw < 100) return;
      lastDraw = t;
      const width = 28;
      const full = Math.round(frac * width);
      const bar = '\u2588'.repeat(full) + '\u2591'.repeat(width - full);
      const eta = finished ? `done in ${clock(secs)}` : `ETA ${clock(rate > 0 ? (total - done) / rate : Infinity)}`;
      stream.write(`\r\x1b[2K${label} ${bar} ${(frac * 100).toFixed(0).padStart(3)}%  ${stats}  ${eta}${finished ? '\n' : ''}`);
      return;
    }
    const decile = Math.floor(frac * 10);
    if (decile === lastDecile && !finished) return;
    if (finished && lastDecile === 10) return;
    lastDecile = decile;
    stream.write(`${label}: ${(frac * 100).toFixed(0)}%  ${stats}${finished ? `  done in ${clock(secs)}` : ''}\n`);
  };
}
