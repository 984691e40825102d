// Runs benchmark jobs in child processes (each has its own WASM heap, which never shrinks, and its own
// thread count), a few at a time, and collects the JSON line each child prints last on stdout.
import { spawn } from 'node:child_process';

export interface ChildJob {
  /** Shown in progress lines and errors. */
  label: string;
  /** Arguments after `node --import tsx <script>`. */
  args: string[];
  /** Extra environment variables (e.g. ATTFC_THREADS). */
  env?: Record<string, string>;
}

export interface RunChildrenOptions {
  /** Jobs running at the same time (default 1). */
  concurrency?: number;
  /** Stream each child's stderr to ours, prefixed with its label (default: only shown on failure). */
  verbose?: boolean;
  onStart?: (job: ChildJob, index: number) => void;
  onDone?: (job: ChildJob, index: number, result: unknown, seconds: number) => void;
}

/** Last non-empty stdout line parsed as JSON. */
function lastJsonLine(stdout: string, label: string): unknown {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`${label}: the child printed no JSON result (last stdout line: ${JSON.stringify(line.slice(0, 200))})`);
  }
}

function runOne(script: string, job: ChildJob, verbose: boolean): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...job.args], {
      env: { ...process.env, ...job.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      stderr = (stderr + s).slice(-20000);
      if (verbose) process.stderr.write(s.replace(/^(?=.)/gm, `[${job.label}] `));
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) {
        const tail = stderr.trim().split('\n').slice(-15).join('\n');
        reject(new Error(`${job.label}: child exited with ${signal ?? `code ${code}`}\n${tail}`));
        return;
      }
      try {
        resolve(lastJsonLine(stdout, job.label));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** Runs every job (at most `concurrency` at once); results are in job order. Rejects on the first failure. */
export async function runChildren(script: string, jobs: readonly ChildJob[], opts: RunChildrenOptions = {}): Promise<unknown[]> {
  const results: unknown[] = new Array(jobs.length);
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 1));
  let next = 0;
  let failed: Error | null = null;
  const lane = async () => {
    while (next < jobs.length && !failed) {
      const i = next++;
      const job = jobs[i];
      opts.onStart?.(job, i);
      const t0 = performance.now();
      try {
        results[i] = await runOne(script, job, opts.verbose ?? false);
      } catch (e) {
        failed ??= e as Error;
        return;
      }
      opts.onDone?.(job, i, results[i], (performance.now() - t0) / 1000);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, lane));
  if (failed) throw failed;
  return results;
}

/**
 * The engine a benchmark's training runs use when no flag names one: ATTFC_BACKEND (wasm or torch),
 * else torch when its addon loads, else wasm, as `auto` would choose between the two.
 */
export async function defaultBenchBackend(): Promise<'wasm' | 'torch'> {
  const env = process.env.ATTFC_BACKEND;
  if (env === 'wasm' || env === 'torch') return env;
  const { torchAvailable } = await import('../../src/engine/torch/index.js');
  return torchAvailable().ok ? 'torch' : 'wasm';
}
