// npm run bench:heads [-- --json] [--quick] [--n 10000,100000] [--heads fc,pfc0.1,...] [--steps k]
//   [--plot <path>] [--timeout <s>] [--threads t] [--device-budget <GiB, default 3.25>]
//   [--backend wasm|torch] [--no-pytorch]
// Head-only training steps (no backbone; embeddings from a seeded class-clustered generator), batch
// 128, D = 512, against the identity count N: step time, peak WASM heap (or libtorch memory), peak
// RSS and head state for full FC, Partial FC (r = 0.1, 0.3) and AttFC (DCC 30% of N, and a fixed
// 65,536), or the error where a configuration fails. Every configuration runs in its own child process
// (the WASM heap never shrinks and peak RSS is per process), one at a time, each with a timeout. Then,
// at each N where AttFC (30%) ran, PyTorch's step of the same algorithm written as the official code
// writes it (bench/reference/pytorch_attfc_head.py), on the same machine in the same run.
// Writes a figure to bench/results/heads.svg and .png (heads-torch.* on torch, heads-quick.* with
// --quick, heads-custom.* with --n or --heads) unless --plot <path> is given.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatBytes, WASM_HEAP_MAX_BYTES } from '../src/engine/index.js';
import { machineInfo, table } from './lib/timing.js';
import { DEFAULT_HEADS, describeSpec, estimateRunBytes, legendLabel, parseHeadSpec, type HeadSpec } from './lib/headSpecs.js';
import { formatCount, headsFigureSvg, writeFigure, type ReferenceSeries } from './lib/plotHeads.js';
import type { HeadRunResult } from './lib/headsChild.js';
import { headsFlags, headsChildFlags, parseOrExit } from './lib/flags.js';
import { pytorchUnavailable, runPytorchReference } from './lib/pytorchReference.js';

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);

if (args[0] === '--child') {
  const { runChild } = await import('./lib/headsChild.js');
  await runChild(parseOrExit('bench:heads child', headsChildFlags, args.slice(1)));
  process.exit(0);
}

const BATCH = 128;
const DIM = 512;
const WEBFACE42M_IDENTITIES = 2_059_906;
const FULL_NS = [10_000, 100_000, 500_000, 1_000_000, WEBFACE42M_IDENTITIES];
const QUICK_NS = [10_000, 100_000];
const log = (s: string) => process.stderr.write(s + '\n');

const parsed = parseOrExit('bench:heads', headsFlags, args);
const { json, steps, threads, deviceBudget, backend } = parsed;
const timeoutSec = parsed.timeout;
const ns = parsed.n ? [...new Set(parsed.n)].sort((a, b) => a - b) : parsed.quick ? QUICK_NS : FULL_NS;
const specs = parsed.heads ?? DEFAULT_HEADS.map(parseHeadSpec);
// Only the full default run replaces the published figure; --quick and partial runs get their own.
const figureName = `${parsed.quick ? 'heads-quick' : parsed.n !== undefined || parsed.heads !== undefined ? 'heads-custom' : 'heads'}${backend === 'torch' ? '-torch' : ''}`;
const plotBase = (parsed.plot ?? path.join(path.dirname(self), 'results', figureName)).replace(/\.(svg|png)$/i, '');

/** MemAvailable from /proc/meminfo (falls back to os.freemem() elsewhere). */
function availableMemory(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return os.freemem();
}

function emptyResult(spec: HeadSpec, n: number, error: string): HeadRunResult {
  return { head: spec.id, n, ok: false, stepMs: null, warmupMs: null, stepsMs: [], cpuMs: null, initMs: null, heapBytes: null, nativeBytes: null, rssBytes: null, stateBytes: null, loss: null, tensorGrowth: null, detail: '', error };
}

/** Runs one configuration in a child process; a crash, a kill or the timeout becomes an error row. */
function runConfig(spec: HeadSpec, n: number): Promise<HeadRunResult & { timedOut?: boolean }> {
  const childArgs = ['--import', 'tsx', self, '--child', '--backend', backend, '--head', spec.id, '--n', String(n), '--batch', String(BATCH), '--dim', String(DIM), '--steps', String(steps)];
  if (threads !== undefined) childArgs.push('--threads', String(threads));
  if (deviceBudget !== undefined) childArgs.push('--device-budget', deviceBudget);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, childArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let lastErr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      process.stderr.write(d);
      const lines = d.split('\n').filter((l) => l.trim());
      if (lines.length) lastErr = lines[lines.length - 1].trim();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutSec * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      if (line && !timedOut) {
        try {
          resolve(JSON.parse(line) as HeadRunResult);
          return;
        } catch {
          /* fall through to the crash report */
        }
      }
      let error: string;
      if (timedOut) error = `timed out after ${timeoutSec} s (child killed)`;
      else if (signal === 'SIGKILL') error = `child killed by SIGKILL (the kernel's out-of-memory killer?)${lastErr ? `; last output: ${lastErr}` : ''}`;
      else if (signal) error = `child died of ${signal}${lastErr ? `; last output: ${lastErr}` : ''}`;
      else error = `child exited with code ${code} without a result${lastErr ? `; last output: ${lastErr}` : ''}`;
      resolve({ ...emptyResult(spec, n, error), timedOut });
    });
  });
}

// ---- run every configuration, one at a time ----
const started = performance.now();
const loadAtStart = os.loadavg()[0];
const results: HeadRunResult[] = [];
for (const spec of specs) {
  let timedOutAt: number | null = null;
  for (const n of ns) {
    const label = `${spec.id} N=${n.toLocaleString('en-US')} (${describeSpec(spec, n, BATCH)})`;
    if (timedOutAt !== null) {
      results.push(emptyResult(spec, n, `not run: timed out at N=${timedOutAt.toLocaleString('en-US')}`));
      continue;
    }
    const need = estimateRunBytes(spec, n, BATCH, DIM, deviceBudget === undefined ? undefined : Number(deviceBudget) * 2 ** 30);
    const avail = availableMemory();
    if (need > avail) {
      log(`bench:heads: skipping ${label}: needs about ${formatBytes(need)}, ${formatBytes(avail)} available`);
      results.push(emptyResult(spec, n, `not run: needs about ${formatBytes(need)} of RAM but only ${formatBytes(avail)} is available`));
      continue;
    }
    log(`bench:heads: ${label} ...`);
    const t0 = performance.now();
    const r = await runConfig(spec, n);
    if ('timedOut' in r && r.timedOut) timedOutAt = n;
    delete (r as { timedOut?: boolean }).timedOut;
    results.push(r);
    log(`bench:heads: ${label}: ${r.ok ? `step ${(r.stepMs! / 1000).toFixed(3)} s` : `FAILED: ${r.error}`} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
}

// ---- PyTorch's AttFC head step at the same N, same machine, right after ours ----
const pytorchThreads = threads ?? os.cpus().length;
const PYTORCH_REFERENCE: ReferenceSeries[] = [];
const attfcRan = results.filter((r) => r.head === 'attfc0.3' && r.ok).map((r) => r.n);
const pytorchMissing = parsed.pytorch ? pytorchUnavailable() : 'skipped (--no-pytorch)';
if (attfcRan.length && !pytorchMissing) {
  const points: { n: number; stepMs: number | null }[] = [];
  for (const n of attfcRan) {
    log(`bench:heads: PyTorch AttFC head step, N=${n.toLocaleString('en-US')} ...`);
    try {
      const ref = runPytorchReference('pytorch_attfc_head.py', ['--n', String(n), '--threads', String(pytorchThreads), '--steps', String(steps)], /median head step ([\d.]+) s/);
      points.push({ n, stepMs: ref.values[0] * 1000 });
      log(`bench:heads: ${ref.summary}`);
    } catch (e) {
      log(`bench:heads: PyTorch at N=${n}: ${(e as Error).message.split('\n')[0]}`);
      points.push({ n, stepMs: null });
    }
  }
  PYTORCH_REFERENCE.push({ head: 'attfc0.3', label: `AttFC in PyTorch (${pytorchThreads} threads, this machine, this run)`, points });
} else if (pytorchMissing && attfcRan.length) log(`bench:heads: PyTorch reference not run: ${pytorchMissing}`);
const wallSec = (performance.now() - started) / 1000;

// ---- report ----
const rows = results.map((r) => ({
  head: r.head,
  n: r.n,
  ok: r.ok,
  stepMs: r.stepMs,
  // on torch the first panel shows the libtorch memory the head's tensors hold
  heapBytes: backend === 'torch' ? r.nativeBytes : r.heapBytes,
  rssBytes: r.rssBytes,
  stateBytes: r.stateBytes,
  error: r.error,
  initMs: r.initMs,
}));

function summaryLine(head: string): string {
  const mine = results.filter((r) => r.head === head).sort((a, b) => a.n - b.n);
  const ok = mine.filter((r) => r.ok);
  const firstFail = mine.find((r) => !r.ok);
  const largest = ok.length ? ok[ok.length - 1].n.toLocaleString('en-US') : 'none';
  if (!firstFail) return `${head}: runs at every N measured; largest N reached ${largest}`;
  return `${head}: largest N reached ${largest}; fails at N=${firstFail.n.toLocaleString('en-US')}: ${firstFail.error}`;
}

function comparisons(): string[] {
  const out: string[] = [];
  const find = (head: string, n: number) => results.find((r) => r.head === head && r.n === n);
  const att = find('attfc0.3', WEBFACE42M_IDENTITIES);
  if (att) out.push(`target "AttFC runs at every N including 2,059,906 (S = 617,856)": ${results.filter((r) => r.head === 'attfc0.3').every((r) => r.ok) ? 'met' : 'NOT met'} (${att.ok ? `${att.detail}, step ${(att.stepMs! / 1000).toFixed(2)} s` : att.error})`);
  const fcFails = results.filter((r) => r.head === 'fc' && !r.ok);
  if (results.some((r) => r.head === 'fc')) {
    const clean = fcFails.every((r) => /^(AttfcError|WasmHeapExhaustedError):/.test(r.error ?? ''));
    out.push(
      `target "FullFC fails cleanly where memory cannot hold it": ${fcFails.length === 0 ? 'no failure in the measured range' : clean ? `met (clean error from N=${fcFails[0].n.toLocaleString('en-US')})` : 'NOT met (a crash, kill or timeout)'}`,
    );
  }
  for (const r of results.filter((x) => x.ok && x.dccFlops && x.sgemmGflops)) {
    const gflops = (ms: number) => r.dccFlops! / (ms / 1000) / 1e9;
    const best = Math.min(...r.stepsMs);
    out.push(
      `AttFC at N=${r.n.toLocaleString('en-US')} (${r.detail}) against this machine's sgemm: the step's two DCC products are ${(r.dccFlops! / 1e9).toFixed(1)} GFLOP; ` +
        `median step ${(r.stepMs! / 1000).toFixed(3)} s = ${gflops(r.stepMs!).toFixed(1)} GFLOPS = ${((100 * gflops(r.stepMs!)) / r.sgemmGflops!).toFixed(0)}% ` +
        `(best step ${(best / 1000).toFixed(3)} s = ${((100 * gflops(best)) / r.sgemmGflops!).toFixed(0)}%) of the ${r.sgemmGflops!.toFixed(1)} GFLOPS sgemm reaches in the same process (2048^3, best of 5)`,
    );
  }
  for (const ref of PYTORCH_REFERENCE) {
    for (const p of ref.points) {
      const r = find(ref.head, p.n);
      if (!r) continue;
      const theirs = p.stepMs === null ? 'failed (see its output above)' : `${(p.stepMs / 1000).toFixed(3)} s`;
      const ours = r.ok ? `${(r.stepMs! / 1000).toFixed(3)} s` : `failed (${r.error})`;
      const ratio = r.ok && p.stepMs ? ` = ${(r.stepMs! / p.stepMs).toFixed(1)}x` : '';
      out.push(`AttFC at N=${p.n.toLocaleString('en-US')}: ours (${backend}) ${ours} vs PyTorch ${theirs}${ratio} (both on this machine, this run)`);
    }
  }
  return out;
}

const machine = machineInfo();
const subtitle = `${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB; Node ${machine.node}; backend ${backend}; ${machine.date} ${machine.commit}; load avg at start ${loadAtStart.toFixed(1)}`;
let figure: { svg: string; png: string } | null = null;
try {
  const svg = headsFigureSvg(rows, {
    title: 'attfc bench:heads — head-only training step against the identity count',
    subtitle,
    heapLimitBytes: backend === 'wasm' ? WASM_HEAP_MAX_BYTES : undefined,
    memoryTitle: backend === 'torch' ? 'libtorch memory held at the end' : undefined,
    ramBytes: os.totalmem(),
    labels: Object.fromEntries(specs.map((s) => [s.id, legendLabel(s)])),
    // only the reference points inside the measured range
    references: PYTORCH_REFERENCE.filter((s) => specs.some((h) => h.id === s.head))
      .map((s) => ({ ...s, points: s.points.filter((p) => ns.includes(p.n)) }))
      .filter((s) => s.points.length > 0),
  });
  figure = await writeFigure(svg, plotBase);
} catch (e) {
  log(`bench:heads: could not write the figure: ${(e as Error).message}`);
}

if (json) {
  process.stdout.write(JSON.stringify({ backend, rows, pytorch: PYTORCH_REFERENCE }) + '\n');
  for (const s of specs) log(summaryLine(s.id));
  for (const c of comparisons()) log(c);
  if (figure) log(`figure: ${figure.svg}, ${figure.png}`);
  log(`total ${(wallSec / 60).toFixed(1)} min`);
} else {
  const mb = (b: number | null) => (b === null ? '-' : formatBytes(b));
  const sec = (ms: number | null) => (ms === null ? '-' : (ms / 1000).toFixed(3));
  console.log(`attfc bench:heads — backend ${backend}, batch ${BATCH}, D ${DIM}, ${steps} timed steps after 1 warm-up${deviceBudget !== undefined && backend === 'wasm' ? `, AttFC device budget ${deviceBudget} GiB` : ''} — ${JSON.stringify(machine)}`);
  console.log(
    table(
      results.map((r) => [
        r.head,
        r.n.toLocaleString('en-US'),
        r.ok ? 'ok' : 'FAIL',
        sec(r.initMs),
        sec(r.warmupMs),
        sec(r.stepMs),
        sec(r.cpuMs),
        backend === 'torch' ? mb(r.nativeBytes) : mb(r.heapBytes),
        mb(r.rssBytes),
        mb(r.stateBytes),
        r.loss === null ? '-' : r.loss.toFixed(2),
        r.detail || '-',
        r.error ? (r.error.length > 110 ? r.error.slice(0, 107) + '...' : r.error) : '',
      ]),
      ['head', 'N', 'status', 'init s', 'warm-up s', 'step s', 'step CPU s', backend === 'torch' ? 'libtorch mem' : 'peak heap', 'peak RSS', 'state', 'loss', 'detail', 'error'],
    ),
  );
  console.log('');
  for (const s of specs) console.log(summaryLine(s.id));
  console.log('');
  for (const c of comparisons()) console.log(c);
  const leaks = results.filter((r) => (r.tensorGrowth ?? 0) > 0);
  for (const r of leaks) console.log(`WARNING: ${r.head} N=${r.n}: ${r.tensorGrowth} tensors leaked over ${steps} steps`);
  console.log('');
  if (figure) console.log(`figure: ${figure.svg}, ${figure.png}`);
  console.log(`total ${(wallSec / 60).toFixed(1)} min; load average ${loadAtStart.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at the end (other jobs make the times noisy)`);
  console.log(`N values: ${ns.map(formatCount).join(', ')}`);
}
