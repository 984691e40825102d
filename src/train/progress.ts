// Training progress on the terminal: a live bar on a TTY, plain log lines otherwise (CI, files, pipes).
import cliProgress from 'cli-progress';
import { formatBytes } from '../engine/index.js';

export interface ProgressInfo {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  samplesPerSec: number;
  etaSec: number;
  heapBytes: number;
  dataWaitShare: number;
}

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec)) return '?';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function formatProgressLine(p: ProgressInfo): string {
  return (
    `step ${p.step}/${p.totalSteps} epoch ${p.epoch} loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(3)} ` +
    `${p.samplesPerSec.toFixed(1)} samples/s data-wait ${(100 * p.dataWaitShare).toFixed(0)}% heap ${formatBytes(p.heapBytes)} ETA ${formatDuration(p.etaSec)}`
  );
}

export interface ProgressView {
  update(p: ProgressInfo): void;
  /** A line printed above the bar (verification results, checkpoints). */
  log(line: string): void;
  stop(): void;
}

export function createProgressView(stream: NodeJS.WriteStream = process.stderr, logEvery = 10): ProgressView {
  if (!stream.isTTY) {
    return {
      update: (p) => {
        if (p.step % logEvery === 0 || p.step === p.totalSteps) stream.write(formatProgressLine(p) + '\n');
      },
      log: (line) => stream.write(line + '\n'),
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: ' {bar} {value}/{total} | {sps} samples/s | loss {loss} | lr {lr} | heap {heap} | ETA {etaText}',
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update: (p) => {
      const payload = { sps: p.samplesPerSec.toFixed(1), loss: p.loss.toFixed(4), lr: p.lr.toExponential(2), heap: formatBytes(p.heapBytes), etaText: formatDuration(p.etaSec) };
      if (!started) {
        bar.start(p.totalSteps, p.step, payload);
        started = true;
      } else bar.update(p.step, payload);
    },
    log: (line) => {
      if (started) {
        stream.write('\r\x1b[2K' + line + '\n');
        bar.render();
      } else stream.write(line + '\n');
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
