// Runs the PyTorch reference scripts (bench/reference/*.py) with Debian's python3-torch on the same
// machine, in the same benchmark run, so attfc's times can be stated as ratios to native PyTorch
// (machines here vary up to 2x from day to day; a ratio measured in one run does not).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PYTHON = process.env.ATTFC_PYTHON ?? '/usr/bin/python3';

/** Why the reference cannot run here (null when it can). */
export function pytorchUnavailable(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (r.status === 0) return null;
  return `PyTorch is not importable by ${PYTHON} (Debian: apt-get install -y python3-torch libopenblas0-pthread)`;
}

export interface PytorchRun {
  /** The script's last line (its summary). */
  summary: string;
  /** Every number the summary names, by the regular expression's groups. */
  values: number[];
  /** The script's whole standard output (e.g. a profile table above the summary). */
  stdout: string;
}

/**
 * Runs bench/reference/<script> with args (and `extraEnv` on top of ours) and parses its summary line
 * with `pattern` (numbers in capture groups). Throws with the script's stderr when it fails.
 */
export function runPytorchReference(script: string, args: string[], pattern: RegExp, extraEnv: Record<string, string> = {}): PytorchRun {
  const file = fileURLToPath(new URL(`../reference/${script}`, import.meta.url));
  // the OpenMP wait policy attfc's torch backend uses (src/engine/torch/addon.ts), so both run alike
  const env = { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE', ...extraEnv };
  const r = spawnSync(PYTHON, [file, ...args], { encoding: 'utf8', maxBuffer: 1 << 24, env });
  if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status}):\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  const summary = lines[lines.length - 1];
  const m = pattern.exec(summary);
  if (!m) throw new Error(`${script}: cannot read its summary line "${summary}"`);
  return { summary, values: m.slice(1).map(Number), stdout: r.stdout };
}
