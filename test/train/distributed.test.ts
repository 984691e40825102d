// Distributed training through the real command line, with real processes: `attfc train --nproc 2`
// (and torchrun, when it is installed) on the torch backend. Two ranks with --sync-bn train exactly as
// one process (and without it they differ, so the comparison can fail); a resume on another world size
// continues exactly; a rank killed mid-run stops the run with one line; ranks given different options
// are refused; a torchrun restart resumes by itself; heads split across the ranks (--shard-head) train
// as the whole head and save its checkpoint format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { torchSkipReason } from '../helpers/engine.js';
import { tinySynth } from '../helpers/tinySynth.js';
import { loadCheckpoint, type CheckpointData } from '../../src/train/checkpoint.js';

const skip = torchSkipReason();
const data = await tinySynth();
const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-dist-'));
const TINY = ['--data', data, '--backbone', 'mbf', '--width', '0.25', '--input-size', '32', '--embedding-size', '32', '--batch-size', '8', '--queue-size', '16'];
const QUIET = ['--lr', '0.01', '--log-every', '1', '--no-export', '--verify-every', '0', '--workers', '1'];
// the ranks choose their engine (torch) and threads themselves, as a user's would
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['ATTFC_BACKEND', 'ATTFC_THREADS', 'OMP_NUM_THREADS'].includes(k)));

interface Run {
  code: number | null;
  stderr: string;
}

function attfc(args: string[], env: Record<string, string> = {}, onSpawn?: (pid: number) => void): Promise<Run> {
  const child = spawn(process.execPath, ['bin/attfc.js', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...ENV, ...env } });
  onSpawn?.(child.pid!);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

function losses(run: string): number[] {
  return readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"loss"'))
    .map((l) => (JSON.parse(l) as { loss: number }).loss);
}

function assertClose(a: number[], b: number[], rel: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: ${a.length} vs ${b.length} steps`);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= rel * Math.abs(b[i]), `${what}: step ${i + 1}: ${x} vs ${b[i]}`));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The pid of the process under `root` (itself included) whose environment has RANK=`rank`. */
function rankPid(root: number, rank: number): number | null {
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`RANK=${rank}`)) return pid;
    } catch {
      continue;
    }
    const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    queue.push(...children);
  }
  return null;
}

async function until(what: string, ok: () => boolean, seconds = 120): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('two ranks with --sync-bn train as one process, without it they differ, and a resume on one process continues exactly', { skip, timeout: 600_000 }, async () => {
  const single = path.join(dir, 'single');
  const synced = path.join(dir, 'synced');
  const unsynced = path.join(dir, 'unsynced');
  const resumed = path.join(dir, 'resumed');
  const runs = await Promise.all([
    attfc(['--backend', 'torch', 'train', ...TINY, ...QUIET, '--steps', '4', '--output', single]),
    // small gradient buckets (DDP's bucket_cap_mb): several allreduces start during each backward pass
    attfc(['train', '--nproc', '2', '--sync-bn', ...TINY, ...QUIET, '--steps', '4', '--checkpoint-every', '2', '--output', synced], { ATTFC_BUCKET_MB: '0.05' }),
  ]);
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  assert.match(runs[1].stderr, /attfc: distributed: 2 ranks \(attfc --nproc, gloo, store 127\.0\.0\.1:\d+\) x 1 thread, batch 8 = 2 x 4 rows, gradients in ([3-9]|\d\d+) buckets, .*batch norm over the global batch \(--sync-bn\)/);
  assert.doesNotMatch(runs[1].stderr, /\[rank 1\]/, 'rank 1 says nothing on a good run');
  assertClose(losses(synced), losses(single), 2e-4, '--nproc 2 --sync-bn vs one process');

  const r = await attfc(['train', '--nproc', '2', ...TINY, ...QUIET, '--steps', '1', '--output', unsynced]);
  assert.equal(r.code, 0, r.stderr);
  const [own] = losses(unsynced);
  const [whole] = losses(single);
  assert.ok(Math.abs(own - whole) > 1e-3 * whole, `each rank's batch norm over its own rows changes the loss (${own} vs ${whole})`);

  // world size 2 -> 1: the checkpoint of step 2, continued by one process, gives the two-rank run's steps 3 and 4
  const back = await attfc(['--backend', 'torch', 'train', '--resume', path.join(synced, 'checkpoints', 'ckpt-000000002'), '--output', resumed]);
  assert.equal(back.code, 0, back.stderr);
  assertClose(losses(resumed), losses(synced).slice(2), 2e-4, 'resumed on one process');
});

/** Bytes from formatBytes's "6.0 KiB". */
function parseBytes(text: string): number {
  const [, n, unit] = /^([\d.]+) (B|KiB|MiB|GiB)$/.exec(text)!;
  return Number(n) * 1024 ** ['B', 'KiB', 'MiB', 'GiB'].indexOf(unit);
}

/** The head's arrays of two checkpoints, and the optimizer's slot of FC's W (the last): the same names and sizes, values within `rel` of each array's largest. */
function assertSameHeadState(a: CheckpointData, b: CheckpointData, rel: number, what: string): void {
  const names = (c: CheckpointData) => {
    const opt = Object.keys(c.arrays).filter((k) => k.startsWith('opt/'));
    const last = `opt/${opt.length - 1}`;
    return [...Object.keys(c.arrays).filter((k) => k.startsWith('head/')), ...((c.json.head as { kind: string }).kind === 'fc' ? [last] : [])].sort();
  };
  assert.deepEqual(names(a), names(b), `${what}: array names`);
  for (const name of names(b)) {
    const [x, y] = [a.arrays[name], b.arrays[name]];
    assert.equal(x.length, y.length, `${what}: ${name} size`);
    let scale = 0;
    for (const v of y) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < y.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= rel * scale, `${what}: ${name}[${i}] ${x[i]} vs ${y[i]}`);
  }
  const { pointer, filled, sampler } = b.json.head as Record<string, unknown>;
  assert.deepEqual([pointer, filled, sampler], ['pointer', 'filled', 'sampler'].map((k) => (a.json.head as Record<string, unknown>)[k]), `${what}: ring and sampler`);
}

test('--shard-head: fc, pfc and attfc split across 2 ranks train as the whole head in one process, hold half of it per rank, save its checkpoint format and resume across sharded and whole', { skip, timeout: 600_000 }, async () => {
  const heads = [['fc'], ['pfc', '--sample-rate', '0.3'], ['attfc']];
  const out = (what: string, head: string) => path.join(dir, `${what}-${head}`);
  const ckpt2 = (what: string, head: string) => path.join(out(what, head), 'checkpoints', 'ckpt-000000002');
  const STEPS = ['--steps', '4', '--checkpoint-every', '2'];
  const runs = await Promise.all(
    heads.flatMap(([head, ...extra]) => [
      attfc(['--backend', 'torch', 'train', '--sync-bn', ...TINY, ...QUIET, '--head', head, ...extra, ...STEPS, '--output', out('whole', head)]),
      attfc(['train', '--nproc', '2', '--sync-bn', '--shard-head', ...TINY, ...QUIET, '--head', head, ...extra, ...STEPS, '--output', out('sharded', head)]),
    ]),
  );
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  heads.forEach(([head], k) => {
    const [whole, sharded] = [runs[2 * k], runs[2 * k + 1]];
    const holds = head === 'attfc' ? 'DCC slots 0\\.\\.7 of 16' : 'classes 0\\.\\.11 of 24';
    const part = new RegExp(`; head sharded across 2 ranks \\(--shard-head\\): rank 0 holds ${holds}, head state ([\\d.]+ \\w+) per rank$`, 'm').exec(sharded.stderr);
    const all = /; head state ([\d.]+ \w+)$/m.exec(whole.stderr);
    assert.ok(part && all, `${head}: the runs' descriptions\n${sharded.stderr}\n${whole.stderr}`);
    assert.ok(Math.abs(parseBytes(part[1]) / parseBytes(all[1]) - 0.5) < 0.03, `${head}: ${part[1]} per rank of the whole head's ${all[1]}`);
    assertClose(losses(out('sharded', head)), losses(out('whole', head)), 2e-4, `${head}: --shard-head on 2 ranks vs one process`);
    assertSameHeadState(loadCheckpoint(ckpt2('sharded', head)), loadCheckpoint(ckpt2('whole', head)), 1e-4, `${head}: checkpoint of step 2`);
  });

  // one process's checkpoints continue sharded (FC: W and its optimizer slot; AttFC: the DCC and its
  // ring; test/heads/shardedHeads.test.ts restores every head's state), a sharded one continues whole
  const resumed = ['fc', 'attfc'];
  const resumes = await Promise.all([
    ...resumed.map((head) => attfc(['train', '--nproc', '2', '--shard-head', '--resume', ckpt2('whole', head), '--output', out('to-sharded', head)])),
    attfc(['--backend', 'torch', 'train', '--resume', ckpt2('sharded', 'attfc'), '--output', out('to-whole', 'attfc')]),
  ]);
  for (const r of resumes) assert.equal(r.code, 0, r.stderr);
  for (const head of resumed) assertClose(losses(out('to-sharded', head)), losses(out('whole', head)).slice(2), 2e-4, `${head}: one process's checkpoint resumed sharded`);
  assertClose(losses(out('to-whole', 'attfc')), losses(out('sharded', 'attfc')).slice(2), 2e-4, "attfc: a sharded run's checkpoint resumed in one process");
});

test('a rank killed mid-run: the run stops within a minute, one line names the rank and the step, no checkpoint', { skip, timeout: 300_000 }, async () => {
  const out = path.join(dir, 'killed');
  let launcher = 0;
  const running = attfc(['train', '--nproc', '2', ...TINY, ...QUIET, '--steps', '2000', '--output', out], {}, (pid) => (launcher = pid));
  await until('step 3', () => existsSync(path.join(out, 'metrics.jsonl')) && losses(out).length >= 3);
  const victim = rankPid(launcher, 1);
  assert.ok(victim, 'rank 1 found');
  const t0 = Date.now();
  process.kill(victim, 'SIGKILL');
  const r = await running;
  assert.ok(Date.now() - t0 < 60_000, `stopped in ${Date.now() - t0} ms`);
  assert.notEqual(r.code, 0);
  const lines = r.stderr.split('\n').filter((l) => /rank/.test(l) && !/^attfc: distributed:/.test(l));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^attfc: rank 1 was killed by SIGKILL at step \d+; the other ranks were stopped \(no checkpoint written\)$/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(existsSync(path.join(out, 'checkpoints')) ? readdirSync(path.join(out, 'checkpoints')).length : 0, 0, 'no checkpoint');
});

test('ranks started with different options are refused at start, naming the option', { skip, timeout: 300_000 }, async () => {
  const port = String(await freePort());
  const rank = (r: number, seed: string) =>
    attfc(['train', ...TINY, ...QUIET, '--steps', '1', '--seed', seed, '--output', path.join(dir, `mismatch${r}`)], { RANK: String(r), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port, OMP_NUM_THREADS: '1' });
  const [a, b] = await Promise.all([rank(0, '0'), rank(1, '5')]);
  for (const r of [a, b]) {
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /attfc: rank 1 was started with seed = 5 but rank 0 with 0: every rank of a run must get the same training options and data/);
  }
});

test('a rank that cannot reach the rendezvous store says in one line at which address and port, after --dist-timeout', { skip, timeout: 120_000 }, async () => {
  const port = String(await freePort());
  const r = await attfc(['train', ...TINY, '--steps', '1', '--dist-timeout', '3', '--output', path.join(dir, 'nostore')], { RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port });
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], new RegExp(`^attfc: rank 1 of 2 could not join the process group through the rendezvous store at 127\\.0\\.0\\.1:${port} within 3 s \\(.*\\); check MASTER_ADDR/MASTER_PORT`));
});

test('without the libtorch addon, --nproc says in one line what to build', { skip, timeout: 120_000 }, async () => {
  const r = await attfc(['train', '--nproc', '2', ...TINY, '--steps', '1', '--output', path.join(dir, 'noaddon')], { ATTFC_TORCH_ADDON: path.join(dir, 'missing.node') });
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^attfc: distributed training runs on backend torch .*the libtorch addon is not built .*npm run build:native/);
});

const torchrun = spawnSync('torchrun', ['--help'], { stdio: 'ignore' }).status === 0;
const torchrunSkip = skip || (torchrun ? false : process.env.ATTFC_REQUIRE_TORCH === '1' ? false : 'torchrun is not installed (Debian: python3-torch)');

test('torchrun: two workers train; a killed worker makes torchrun restart both, which resume from the newest checkpoint by themselves', { skip: torchrunSkip, timeout: 600_000 }, async () => {
  const out = path.join(dir, 'torchrun');
  const port = String(await freePort());
  // Debian's torchrun 1.13 needs its output options spelled out (-r 1 -t 1): its defaults crash under Python 3.11+
  const args = ['--no_python', '--nproc_per_node', '2', '-r', '1', '-t', '1', '--max_restarts', '1', '--master_port', port, 'node', 'bin/attfc.js', 'train', ...TINY, ...QUIET, '--steps', '12', '--checkpoint-every', '3', '--output', out];
  const child = spawn('torchrun', args, { stdio: ['ignore', 'ignore', 'pipe'], env: ENV });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await until('the first checkpoint', () => existsSync(path.join(out, 'checkpoints', 'ckpt-000000003', 'checkpoint.json')), 240);
  const victim = rankPid(child.pid!, 1);
  if (victim) process.kill(victim, 'SIGKILL');
  const code = await exited;
  assert.equal(code, 0, stderr);
  assert.match(stderr, /attfc: distributed: 2 ranks \(torchrun, gloo/);
  if (victim && !/finished at step 12 \(12 this run\)/.test(stderr)) assert.match(stderr, /attfc: torchrun restart 1: resuming from .*ckpt-\d{9}, the newest checkpoint of --output/);
  assert.ok(existsSync(path.join(out, 'checkpoints', 'ckpt-000000012', 'checkpoint.json')), 'the run finished');
});
