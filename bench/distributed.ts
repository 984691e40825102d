// npm run bench:distributed [-- --quick] [--json] [--sizes 1M,24M] [--iters n] [--steps n] [--r18-steps n] [--skip-r18] [--verbose]
// Distributed training on c10d, measured against its reference in the same run:
//  1. allreduce: attfc's gradient-bucket allreduce (2 ranks on loopback, Gloo through the libtorch addon)
//     against PyTorch's torch.distributed Gloo allreduce (Debian python3-torch, 2 ranks), float32 sums of
//     the same sizes, both on persistent buffers summed in place; MiB/s = tensor bytes / median time; and
//     attfc's training path, where the gradient is first copied into its bucket;
//  2. training throughput, as `attfc train` runs it: the demo's model (MobileFaceNet x0.5, 32x32, batch
//     64, AttFC, SYNTHETIC faces rendered on demand) and IResNet-18 112 (batch 32), each as one process
//     with 2 threads ("1x2") and as 2 ranks with 1 thread each ("2x1", `--nproc 2`); samples/s over the
//     logging windows after the first, and where a step's time goes (rank 0's metrics: data wait, class
//     encoder, backbone forward+backward, of which waiting for the allreduce, head).
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { distributedFlags, parseOrExit } from './lib/flags.js';
import { machineInfo, table } from './lib/timing.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const flags = parseOrExit('bench:distributed', distributedFlags, process.argv.slice(2));
const log = (s: string) => process.stderr.write(s + '\n');
const PYTHON = process.env.ATTFC_PYTHON ?? '/usr/bin/python3';

const { torchAvailable } = await import('../src/engine/torch/index.js');
const torch = torchAvailable();
if (!torch.ok) {
  log(`bench:distributed: distributed training runs on backend torch: ${torch.reason}`);
  process.exit(1);
}
const out = path.resolve(flags.output ?? path.join(root, '.cache', 'bench', 'distributed'));
rmSync(out, { recursive: true, force: true });

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Runs a command; resolves with its stdout, rejects with its stderr's tail when it fails. */
function run(label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr = (stderr + s).slice(-20000);
      if (flags.verbose) process.stderr.write(s.replace(/^(?=.)/gm, `[${label}] `));
    });
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${label} exited ${code}:\n${stderr.trim().split('\n').slice(-12).join('\n')}`))));
  });
}

interface SizeResult {
  floats: number;
  ms: number;
  all: number[];
  /** attfc only: the bucket's buffer summed in place (no copy in), as the reference does. */
  inPlaceMs?: number;
}

/** Two ranks of `cmd args` with torch.distributed's environment; rank 0's JSON line. */
async function twoRanks(label: string, cmd: string, args: string[]): Promise<{ sizes: SizeResult[] }> {
  const port = String(await freePort());
  const ranks = [0, 1].map((r) => run(`${label} rank ${r}`, cmd, args, { RANK: String(r), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port, OMP_NUM_THREADS: '1' }));
  const [first] = await Promise.all(ranks);
  return JSON.parse(first.trim().split('\n').pop()!) as { sizes: SizeResult[] };
}

const mib = (floats: number, ms: number) => (floats * 4) / 2 ** 20 / (ms / 1000);
const sizes = flags.quick ? flags.sizes.slice(-1) : flags.sizes;
const iters = flags.quick ? 3 : flags.iters;

log(`bench:distributed: allreduce, 2 ranks on loopback, sizes ${sizes.join(', ')} floats, ${iters} timed rounds each`);
const ours = await twoRanks('attfc allreduce', process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'lib', 'allreduceRank.ts'), sizes.join(','), String(iters)]);
const theirs = await twoRanks('pytorch allreduce', PYTHON, [path.join(root, 'bench', 'reference', 'pytorch_allreduce.py'), sizes.join(','), String(iters)]);
const allreduce = sizes.map((floats, i) => ({
  floats,
  attfcMs: ours.sizes[i].inPlaceMs!,
  attfcBucketMs: ours.sizes[i].ms,
  pytorchMs: theirs.sizes[i].ms,
  attfcMiBps: mib(floats, ours.sizes[i].inPlaceMs!),
  attfcBucketMiBps: mib(floats, ours.sizes[i].ms),
  pytorchMiBps: mib(floats, theirs.sizes[i].ms),
}));

interface Window {
  samplesPerSec: number;
  [k: string]: number;
}

/** `attfc train` (the sources, through tsx) with `args`; the metrics windows after the first. */
async function train(label: string, args: string[], env: Record<string, string> = {}): Promise<Window[]> {
  const dir = path.join(out, label);
  const cli = path.join(root, 'src', 'cli', 'main.ts');
  await run(label, process.execPath, ['--import', 'tsx', cli, ...args, '--output', dir, '--no-export', '--verify-every', '0', '--checkpoint-every', '0'], { ATTFC_BACKEND: 'torch', ...env });
  const windows = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"samplesPerSec"'))
    .map((l) => JSON.parse(l) as Window);
  if (windows.length < 2) throw new Error(`${label}: fewer than 2 logging windows; raise the steps`);
  return windows.slice(1);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const PARTS = ['data', 'classEncoder', 'backbone', 'gradientWait', 'head', 'step'] as const;
function summary(windows: Window[]): { samplesPerSecond: number; seconds: Record<string, number> } {
  return {
    samplesPerSecond: mean(windows.map((w) => w.samplesPerSec)),
    seconds: Object.fromEntries(PARTS.map((p) => [p, mean(windows.map((w) => w[`time.${p}`] ?? 0))])),
  };
}

const demoSteps = flags.steps ?? (flags.quick ? 30 : 80);
const demo = ['--data', 'synth:1000x8@32,verify-pairs=0', '--backbone', 'mbf', '--width', '0.5', '--input-size', '32', '--batch-size', '64', '--ema-momentum', '0.95', '--margin-s', '32', '--margin-m2', '0.2', '--steps', String(demoSteps), '--log-every', '10'];
const r18Steps = flags.r18Steps ?? (flags.quick ? 8 : 12);
const r18 = ['--data', 'synth:1000x4@112,verify-pairs=0', '--backbone', 'r18', '--input-size', '112', '--batch-size', '32', '--steps', String(r18Steps), '--log-every', '4'];
const configs: { model: string; args: string[] }[] = [{ model: 'demo', args: demo }, ...(flags.skipR18 ? [] : [{ model: 'iresnet18', args: r18 }])];
const training: Record<string, Record<'1x2' | '2x1', ReturnType<typeof summary>>> = {};
for (const { model, args } of configs) {
  log(`bench:distributed: ${model}: 1 process x 2 threads, then 2 ranks x 1 thread (--nproc 2)`);
  const single = summary(await train(`${model}-1x2`, ['--threads', '2', 'train', ...args]));
  const ranks = summary(await train(`${model}-2x1`, ['train', '--nproc', '2', ...args]));
  training[model] = { '1x2': single, '2x1': ranks };
}

const machine = machineInfo();
const largest = allreduce[allreduce.length - 1];
const result = {
  allreduceMiBps: largest.attfcMiBps,
  pytorchAllreduceMiBps: largest.pytorchMiBps,
  bucketAllreduceMiBps: largest.attfcBucketMiBps,
  allreduceFloats: largest.floats,
  allreduce,
  samplesPerSecond: { '1x2': training.demo['1x2'].samplesPerSecond, '2x1': training.demo['2x1'].samplesPerSecond },
  ...(training.iresnet18 ? { iresnet18SamplesPerSecond: { '1x2': training.iresnet18['1x2'].samplesPerSecond, '2x1': training.iresnet18['2x1'].samplesPerSecond } } : {}),
  stepSeconds: training,
  machine,
};
if (flags.json) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  const f = (x: number, d = 1) => x.toFixed(d);
  process.stdout.write(
    [
      `bench:distributed on ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.date}, commit ${machine.commit}, load ${machine.loadAverage1m}`,
      '',
      'allreduce, 2 ranks on loopback, float32 sum (median of the timed rounds; MiB/s = tensor bytes / time)',
      table(
        allreduce.map((a) => [
          a.floats.toLocaleString('en-US'),
          f(a.attfcMs),
          f(a.attfcMiBps),
          f(a.pytorchMs),
          f(a.pytorchMiBps),
          f(a.attfcMiBps / a.pytorchMiBps, 2),
          f(a.attfcBucketMs),
          f(a.attfcBucketMiBps / a.pytorchMiBps, 2),
        ]),
        ['floats', 'attfc ms', 'attfc MiB/s', 'PyTorch ms', 'PyTorch MiB/s', 'throughput ratio', 'with copy in, ms', 'ratio'],
      ),
      "(attfc: a persistent bucket summed in place, as PyTorch's reference sums its tensor; 'with copy in': the training path, the gradient first copied into the bucket)",
      '',
      'training (SYNTHETIC faces rendered on demand; samples/s of the global batch, mean over the windows after the first)',
      table(
        Object.entries(training).flatMap(([model, t]) =>
          (['1x2', '2x1'] as const).map((k) => [model, k, f(t[k].samplesPerSecond), ...PARTS.map((p) => f(t[k].seconds[p], 3))]),
        ),
        ['model', 'procs x threads', 'samples/s', ...PARTS.map((p) => `${p} s`)],
      ),
      '(backbone includes gradientWait: the allreduce time the backward pass did not hide)',
    ].join('\n') + '\n',
  );
}
