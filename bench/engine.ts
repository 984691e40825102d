// npm run bench:engine [-- --json] [--quick] [--backend all|wasm|torch]
// Kernel GFLOPS and full training steps: stock tfjs-wasm against attfc's kernel pack, 1 against 2
// threads, 2 single-thread data-parallel workers, and backend torch (libtorch addon) at 1 and 2 threads,
// each configuration in its own process (thread counts are fixed per process); then PyTorch's own
// IResNet-18 step on the same machine in the same run, the reference every ratio is taken against.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { machineInfo, table } from './lib/timing.js';
import { engineFlags, engineChildFlags, parseOrExit } from './lib/flags.js';
import { pytorchUnavailable, runPytorchReference } from './lib/pytorchReference.js';
import { torchAvailable } from '../src/engine/torch/index.js';

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);

if (args[0] === '--child') {
  const { runChild } = await import('./lib/engineChild.js');
  await runChild(parseOrExit('bench:engine child', engineChildFlags, args.slice(1)));
} else {
  const { json, quick, backend } = parseOrExit('bench:engine', engineFlags, args);
  type Result = Record<string, number | string | null>;
  const runConfig = (engine: 'wasm' | 'torch', threads: number, pack: boolean, extra: string[] = []): Result => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', '--backend', engine, '--threads', String(threads), '--pack', pack ? 'on' : 'off', ...(quick ? ['--quick'] : []), ...extra], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    if (r.status !== 0) throw new Error(`benchmark child (${engine}, threads ${threads}, pack ${pack}) failed:\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };
  const log = (s: string) => process.stderr.write(s + '\n');
  const torch = torchAvailable();
  if (backend === 'torch' && !torch.ok) {
    log(`bench:engine: backend torch: ${torch.reason}`);
    process.exit(1);
  }
  const wasm = backend !== 'torch';
  const withTorch = backend !== 'wasm' && torch.ok;
  if (!withTorch && backend === 'all') log(`bench:engine: backend torch skipped: ${torch.reason}`);
  const configs: { name: string; engine: 'wasm' | 'torch'; threads: number; pack: boolean }[] = [
    ...(wasm
      ? [
          { name: 'stock wasm, 1 thread', engine: 'wasm' as const, threads: 1, pack: false },
          { name: 'stock wasm, 2 threads', engine: 'wasm' as const, threads: 2, pack: false },
          { name: 'pack, 1 thread', engine: 'wasm' as const, threads: 1, pack: true },
          { name: 'pack, 2 threads', engine: 'wasm' as const, threads: 2, pack: true },
        ]
      : []),
    ...(withTorch
      ? [
          { name: 'torch, 1 thread', engine: 'torch' as const, threads: 1, pack: false },
          { name: 'torch, 2 threads', engine: 'torch' as const, threads: 2, pack: false },
        ]
      : []),
  ];
  const results: (Result & { name: string })[] = [];
  for (const c of configs) {
    log(`bench:engine: ${c.name} ...`);
    results.push({ name: c.name, ...runConfig(c.engine, c.threads, c.pack) });
  }
  let dp: Result = {};
  if (wasm) {
    log('bench:engine: 2 single-thread data-parallel workers ...');
    dp = runConfig('wasm', 1, true, ['--data-parallel']);
  }
  // PyTorch's IResNet-18 b8 step (NCHW, its default layout) on the same cores, right after ours
  let pytorchIresnet18StepSeconds: number | null = null;
  let pytorchSummary = pytorchUnavailable();
  if (!pytorchSummary) {
    log('bench:engine: PyTorch reference IResNet-18 step ...');
    const ref = runPytorchReference('pytorch_iresnet_step.py', ['--threads', '2', '--steps', quick ? '2' : '5'], /median step ([\d.]+) s/);
    pytorchIresnet18StepSeconds = ref.values[0];
    pytorchSummary = ref.summary;
  }

  const fmt = (v: unknown, d = 1) => (typeof v === 'number' ? v.toFixed(d) : v == null ? '-' : String(v));
  const rows = [
    ['conv3x3 64->64 16x56x56 fwd (GFLOPS)', 'conv3x3FwdGflops'],
    ['conv3x3 fwd+bwd (GFLOPS)', 'conv3x3FwdBwdGflops'],
    ['depthwise 3x3 128ch fwd+bwd (ms)', 'depthwiseFwdBwdMs'],
    ['matmul 256x512x100000 (GFLOPS)', 'matmulGflops'],
    ['  grad dW = A^T.dC (GFLOPS)', 'matmulGradAGflops'],
    ['  grad dA = dC.B^T (GFLOPS)', 'matmulGradBGflops'],
    ['IResNet-18 112x112 b8 step (s)', 'iresnet18StepSeconds'],
    ['MobileFaceNet 112x112 b8 step (s)', 'mbfStepSeconds'],
  ];
  const byName = (name: string) => results.find((r) => r.name === name);
  const best = byName('pack, 2 threads');
  const torch2 = byName('torch, 2 threads');
  const ratio = (a: unknown, b: number | null) => (typeof a === 'number' && b ? a / b : null);
  // training's default engine on WASM is the data-parallel one (one single-thread replica per core)
  const summary = {
    machine: machineInfo(),
    backend: withTorch ? 'torch' : 'wasm',
    threads: 2,
    conv3x3FwdBwdGflops: (torch2 ?? best)?.conv3x3FwdBwdGflops ?? null,
    matmulGradGflops: best ? Math.min(Number(best.matmulGradAGflops), Number(best.matmulGradBGflops)) : null,
    iresnet18StepSeconds: dp.iresnet18B8StepSeconds ?? null,
    iresnet18StepEngine: 'data-parallel, 2 replicas x 1 thread, 4 images each',
    iresnet18StepSecondsThreads: best?.iresnet18StepSeconds ?? null,
    mbfStepSeconds: dp.mbfB8StepSeconds ?? null,
    mbfStepSecondsThreads: best?.mbfStepSeconds ?? null,
    torchIresnet18StepSeconds: torch2?.iresnet18StepSeconds ?? null,
    torchMbfStepSeconds: torch2?.mbfStepSeconds ?? null,
    torchConv3x3FwdBwdGflops: torch2?.conv3x3FwdBwdGflops ?? null,
    pytorchIresnet18StepSeconds,
    torchToPytorchRatio: ratio(torch2?.iresnet18StepSeconds, pytorchIresnet18StepSeconds),
    wasmToPytorchRatio: ratio(dp.iresnet18B8StepSeconds, pytorchIresnet18StepSeconds),
    pytorchReference: pytorchSummary,
    dataParallel: dp,
    configs: results,
  };
  if (json) {
    console.log(JSON.stringify(summary));
  } else {
    console.log(`attfc engine benchmark — ${JSON.stringify(summary.machine)}`);
    console.log(table(rows.map(([label, key]) => [label, ...results.map((r) => fmt(r[key], key.endsWith('Seconds') ? 2 : 1))]), ['workload', ...configs.map((c) => c.name)]));
    if (wasm && best) {
      console.log('');
      console.log(`2 x 1-thread data-parallel workers (training's default on WASM; gradients summed through shared memory):`);
      for (const [label, key, threaded] of [['IResNet-18', 'iresnet18', best.iresnet18StepSeconds], ['MobileFaceNet', 'mbf', best.mbfStepSeconds]] as const) {
        console.log(`  ${label} 112x112 b8 (4 per worker): step ${fmt(dp[`${key}B8StepSeconds`], 2)} s = ${fmt(dp[`${key}B8ImagesPerSecond`], 2)} img/s (exchange ${fmt(dp[`${key}B8ExchangeSeconds`], 2)} s)` +
          ` vs one 2-thread instance ${fmt(threaded, 2)} s = ${fmt(8 / Number(threaded), 2)} img/s`);
        if (dp[`${key}B16StepSeconds`] !== undefined)
          console.log(`  ${label} 112x112 b16 (8 per worker): step ${fmt(dp[`${key}B16StepSeconds`], 2)} s = ${fmt(dp[`${key}B16ImagesPerSecond`], 2)} img/s`);
      }
    }
    console.log('');
    console.log(`PyTorch on the same machine, this run (OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY ?? "PASSIVE"}, as attfc's torch backend): ${pytorchSummary}`);
    if (summary.torchToPytorchRatio !== null) console.log(`  IResNet-18 b8 step, backend torch (2 threads) / PyTorch: ${fmt(summary.torchToPytorchRatio, 2)}x`);
    if (summary.wasmToPytorchRatio !== null) console.log(`  IResNet-18 b8 step, WASM data-parallel / PyTorch: ${fmt(summary.wasmToPytorchRatio, 2)}x`);
    const profiled = results.filter((r) => r.iresnet18Profile);
    if (profiled.length) {
      console.log('');
      console.log('Where the IResNet-18 b8 step goes (tf.profile of one step, ms per kernel, top 10):');
      for (const r of profiled) console.log(`  ${r.name}: ${r.iresnet18Profile}`);
    }
    console.log('"-" = not measured; "missing kernel" = stock tfjs-wasm cannot run it.');
  }
}
