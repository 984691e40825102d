// Runs a training from the CLI: progress view, Ctrl-C handling, and a short report at the end.
import { train, type TrainResult } from '../train/trainer.js';
import type { TrainConfig, TrainConfigInput } from '../train/config.js';
import { createProgressView, formatDuration } from '../train/progress.js';

/** `config`: the full config of a new run, or with `resume` only the keys to change (or null). */
export async function runTrainingCli(config: TrainConfig | Partial<TrainConfigInput> | null, resume?: string): Promise<number> {
  const view = createProgressView(process.stderr, config?.logEvery ?? 10);
  const handle = train(config, { resume, log: (l) => view.log(l) });
  handle.on('step', (m) => view.update(m));
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      view.log('attfc: interrupted: finishing this step and writing a checkpoint (Ctrl-C again to abort now)');
      handle.stop();
    } else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  let result: TrainResult;
  try {
    result = await handle.done;
  } finally {
    view.stop();
    process.off('SIGINT', onSigint);
  }
  printReport(result);
  return result.interrupted ? 130 : 0;
}

export function printReport(r: TrainResult): void {
  const lines = [
    `attfc: ${r.interrupted ? 'interrupted' : 'finished'} at step ${r.steps} (${r.stepsThisRun} this run) in ${formatDuration(r.seconds)}, ${r.samplesPerSec.toFixed(1)} samples/s, final loss ${r.finalLoss.toFixed(4)}`,
    ...r.verification.map((v) => `  ${v.name}: accuracy ${v.accuracy.toFixed(5)} +- ${v.std.toFixed(5)}, VAL@FAR=1e-3 ${v.valAtFar1e3.val.toFixed(4)} (${v.pairs} pairs)`),
    `  checkpoint: ${r.checkpoint}`,
    ...(r.modelDir ? [`  model: ${r.modelDir}`] : []),
    `  metrics: ${r.output}/metrics.jsonl`,
  ];
  process.stderr.write(lines.join('\n') + '\n');
}
