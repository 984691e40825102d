// Training progress on the terminal: the shared progress bar on a TTY, plain log lines every `logEvery`
// steps otherwise (CI, files, pipes).
import { formatBytes } from '../engine/index.js';
import { TerminalBar, formatDuration, type ProgressStream } from '../util/progress.js';

export { formatDuration };

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

export function createProgressView(stream: ProgressStream = process.stderr, logEvery = 10): ProgressView {
  if (!stream.isTTY) {
    return {
      update: (p) => {
        if (p.step % logEvery === 0 || p.step === p.totalSteps) stream.write(formatProgressLine(p) + '\n');
      },
      log: (line) => stream.write(line + '\n'),
      stop: () => undefined,
    };
  }
  const bar = new TerminalBar(stream, ' {bar} {value}/{total} | {sps} samples/s | loss {loss} | lr {lr} | heap {heap} | ETA {etaText}');
  return {
    update: (p) =>
      bar.update(p.step, p.totalSteps, { sps: p.samplesPerSec.toFixed(1), loss: p.loss.toFixed(4), lr: p.lr.toExponential(2), heap: formatBytes(p.heapBytes), etaText: formatDuration(p.etaSec) }),
    log: (line) => bar.log(line),
    stop: () => bar.stop(),
  };
}
