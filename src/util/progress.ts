// Progress on stderr, one implementation for every command: a cli-progress bar redrawn in place on a
// terminal, plain lines (at a cadence the caller picks) when the stream is a file, pipe or CI log.
import cliProgress from 'cli-progress';

/** Where progress goes: a terminal stream, or anything with write() (tests capture it). */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Count callback shape used by evaluateBin / evaluateIjb / embedImageFiles / synthesize. */
export type ProgressFn = (done: number, total: number) => void;

/** `1h02m`, `3m05s`, `42s`. */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec)) return '?';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/**
 * The terminal bar. `format` is cli-progress's (`{bar}`, `{value}`, `{total}`, `{percentage}`,
 * `{eta_formatted}` and payload keys). It starts on the first update; log() prints a line above it.
 */
export class TerminalBar {
  private readonly bar: cliProgress.SingleBar;
  private started = false;

  constructor(
    private readonly stream: ProgressStream,
    format: string,
  ) {
    this.bar = new cliProgress.SingleBar(
      { stream: stream as NodeJS.WritableStream, format, barsize: 24, hideCursor: true, clearOnComplete: false, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
  }

  update(value: number, total: number, payload: Record<string, string>): void {
    if (!this.started) {
      this.bar.start(total, value, payload);
      this.started = true;
    } else this.bar.update(value, payload);
  }

  log(line: string): void {
    if (!this.started) {
      this.stream.write(line + '\n');
      return;
    }
    this.stream.write('\r\x1b[2K' + line + '\n');
    this.bar.render();
  }

  stop(): void {
    if (this.started) this.bar.stop();
    this.started = false;
  }
}

export interface CountProgressOptions {
  stream?: ProgressStream;
  /** Unit shown after the counts (default 'images'). */
  unit?: string;
}

/** A progress callback that can also print a line (above the bar on a terminal, so the bar is not torn). */
export type LoggingProgressFn = ProgressFn & { log(line: string): void };

/**
 * A progress callback for work counted in items, labelled `label` (e.g. 'lfw'): the bar on a terminal,
 * otherwise a line at every 10% (`lfw: 120/1200 images (10%), 85.2 images/s`). Its log() prints a line.
 */
export function createProgress(label: string, options: CountProgressOptions = {}): LoggingProgressFn {
  const stream = options.stream ?? process.stderr;
  const unit = options.unit ?? 'images';
  const start = performance.now();
  const rate = (done: number) => done / Math.max((performance.now() - start) / 1000, 1e-3);
  if (stream.isTTY) {
    const bar = new TerminalBar(stream, `${label} {bar} {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`);
    const update = (done: number, total: number) => {
      bar.update(done, total, { rate: rate(done).toFixed(1) });
      if (done >= total) bar.stop();
    };
    return Object.assign(update, { log: (line: string) => bar.log(line) });
  }
  let lastDecile = -1;
  const update = (done: number, total: number) => {
    const finished = done >= total;
    const decile = finished ? 10 : Math.floor((10 * done) / Math.max(total, 1));
    if (decile === lastDecile) return;
    lastDecile = decile;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    const secs = (performance.now() - start) / 1000;
    stream.write(`${label}: ${done}/${total} ${unit} (${pct}%), ${rate(done).toFixed(1)} ${unit}/s${finished ? `, done in ${formatDuration(secs)}` : ''}\n`);
  };
  return Object.assign(update, { log: (line: string) => void stream.write(`${line}\n`) });
}
