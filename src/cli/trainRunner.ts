// Runs a training from the CLI: progress view, Ctrl-C / SIGTERM handling, and a short report at the end.
// A rank of a distributed run other than 0 shows no progress and no report (rank 0 speaks for the run);
// under `attfc train --nproc` every rank tells the launcher its step, and stops if the launcher vanishes.
import { train, type TrainResult } from '../train/trainer.js';
import type { TrainConfig, TrainConfigInput } from '../train/config.js';
import { createProgressView, formatDuration, type ProgressView } from '../train/progress.js';
import { readLaunchEnv } from '../train/distributed/launchEnv.js';

/** Exit codes of a run stopped by a signal: 128 + the signal's number, as shells report them. */
const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

/** `config`: the full config of a new run, or with `resume` only the keys to change (or null). */
export async function runTrainingCli(
  config: TrainConfig | Partial<TrainConfigInput> | null,
  resume?: string,
  flags: { overwrite?: boolean; allowDataChange?: boolean; dryRun?: boolean; autoResume?: boolean } = {},
): Promise<number> {
  const rank = readLaunchEnv()?.rank ?? 0;
  // under `attfc train --nproc` rank 0 draws on the launcher's terminal through a pipe
  const stderr = { write: (s: string) => process.stderr.write(s), isTTY: process.stderr.isTTY === true || process.env.ATTFC_STDERR_TTY === '1', columns: process.stderr.columns ?? (Number(process.env.COLUMNS) || 80) };
  const view: ProgressView =
    rank === 0 ? createProgressView(stderr, config?.logEvery ?? 10) : { update: () => undefined, log: (l) => process.stderr.write(l + '\n'), stop: () => undefined };
  const handle = train(config, { resume, ...flags, log: (l) => view.log(l) });
  handle.on('step', (m) => {
    view.update(m);
    process.send?.({ type: 'step', step: m.step });
  });
  // SIGTERM is what timeout, docker stop, Kubernetes and SLURM send: stop like Ctrl-C, with a checkpoint
  let stoppedBy: keyof typeof SIGNAL_EXIT | null = null;
  const onSignal = (signal: keyof typeof SIGNAL_EXIT) => {
    if (stoppedBy === null) {
      stoppedBy = signal;
      if (rank === 0)
        view.log(`attfc: ${signal === 'SIGINT' ? 'interrupted' : 'terminated (SIGTERM)'}: finishing this step and writing a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'a second signal'} again to abort now)`);
      handle.stop();
    } else process.exit(SIGNAL_EXIT[signal]);
  };
  const onSigint = () => onSignal('SIGINT');
  const onSigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  // the --nproc launcher is gone (killed): stop as on SIGTERM, with every other rank
  const onDisconnect = () => onSignal('SIGTERM');
  if (process.env.ATTFC_LAUNCHER === '1') process.on('disconnect', onDisconnect);
  let result: TrainResult;
  try {
    result = await handle.done;
  } finally {
    view.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    process.off('disconnect', onDisconnect);
    // the launcher's channel must not keep a finished rank alive
    if (process.connected) process.disconnect();
  }
  if (rank === 0) printReport(result);
  return result.interrupted ? SIGNAL_EXIT[stoppedBy ?? 'SIGINT'] : 0;
}

export function printReport(r: TrainResult): void {
  if (r.dryRun) return; // its lines are in the log already
  if (r.alreadyFinished) {
    process.stderr.write(`attfc: the run was already finished at step ${r.steps}; nothing to do\n  checkpoint: ${r.checkpoint}\n`);
    return;
  }
  const lines = [
    `attfc: ${r.interrupted ? 'interrupted' : 'finished'} at step ${r.steps} (${r.stepsThisRun} this run) in ${formatDuration(r.seconds)}, ${r.samplesPerSec.toFixed(1)} samples/s, final loss ${r.finalLoss.toFixed(4)}`,
    ...r.verification.map((v) => `  ${v.name}: accuracy ${v.accuracy.toFixed(5)} +- ${v.std.toFixed(5)}, VAL@FAR=1e-3 ${v.valAtFar1e3.val.toFixed(4)} (${v.pairs} pairs)`),
    `  checkpoint: ${r.checkpoint}`,
    ...(r.modelDir ? [`  model: ${r.modelDir}`] : []),
    `  metrics: ${r.output}/metrics.jsonl`,
  ];
  process.stderr.write(lines.join('\n') + '\n');
}
