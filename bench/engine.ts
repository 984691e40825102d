// npm run bench:engine [-- --json] [--quick]
// Kernel GFLOPS and full training steps, stock tfjs-wasm against attfc's kernel pack, 1 against 2
// threads, and 2 single-thread data-parallel workers, each configuration in its own process (the wasm
// thread count is fixed per process).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { machineInfo, table } from './lib/timing.js';
import { engineFlags, engineChildFlags, parseOrExit } from './lib/flags.js';

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);

if (args[0] === '--child') {
  const { runChild } = await import('./lib/engineChild.js');
  await runChild(parseOrExit('bench:engine child', engineChildFlags, args.slice(1)));
} else {
  const { json, quick } = parseOrExit('bench:engine', engineFlags, args);
  type Result = Record<string, number | string | null>;
  const runConfig = (threads: number, pack: boolean, extra: string[] = []): Result => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', '--threads', String(threads), '--pack', pack ? 'on' : 'off', ...(quick ? ['--quick'] : []), ...extra], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    if (r.status !== 0) throw new Error(`benchmark child (threads ${threads}, pack ${pack}) failed:\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };
  const log = (s: string) => process.stderr.write(s + '\n');
  const configs: { name: string; threads: number; pack: boolean }[] = [
    { name: 'stock wasm, 1 thread', threads: 1, pack: false },
    { name: 'stock wasm, 2 threads', threads: 2, pack: false },
    { name: 'pack, 1 thread', threads: 1, pack: true },
    { name: 'pack, 2 threads', threads: 2, pack: true },
  ];
  const results: (Result & { name: string })[] = [];
  for (const c of configs) {
    log(`bench:engine: ${c.name} ...`);
    results.push({ name: c.name, ...runConfig(c.threads, c.pack) });
  }
  log('bench:engine: 2 single-thread data-parallel workers ...');
  const dp = runConfig(1, true, ['--data-parallel']);

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
  const best = results[3];
  // training's default engine on WASM is the data-parallel one (one single-thread replica per core)
  const summary = {
    machine: machineInfo(),
    backend: 'wasm',
    threads: 2,
    conv3x3FwdBwdGflops: best.conv3x3FwdBwdGflops,
    matmulGradGflops: Math.min(Number(best.matmulGradAGflops), Number(best.matmulGradBGflops)),
    iresnet18StepSeconds: dp.iresnet18B8StepSeconds,
    iresnet18StepEngine: 'data-parallel, 2 replicas x 1 thread, 4 images each',
    iresnet18StepSecondsThreads: best.iresnet18StepSeconds,
    mbfStepSeconds: dp.mbfB8StepSeconds,
    mbfStepSecondsThreads: best.mbfStepSeconds,
    dataParallel: dp,
    configs: results,
  };
  if (json) {
    console.log(JSON.stringify(summary));
  } else {
    console.log(`attfc engine benchmark — ${JSON.stringify(summary.machine)}`);
    console.log(table(rows.map(([label, key]) => [label, ...results.map((r) => fmt(r[key], key.endsWith('Seconds') ? 2 : 1))]), ['workload', ...configs.map((c) => c.name)]));
    console.log('');
    console.log(`2 x 1-thread data-parallel workers (training's default on WASM; gradients summed through shared memory):`);
    for (const [label, key, threaded] of [['IResNet-18', 'iresnet18', best.iresnet18StepSeconds], ['MobileFaceNet', 'mbf', best.mbfStepSeconds]] as const) {
      console.log(`  ${label} 112x112 b8 (4 per worker): step ${fmt(dp[`${key}B8StepSeconds`], 2)} s = ${fmt(dp[`${key}B8ImagesPerSecond`], 2)} img/s (exchange ${fmt(dp[`${key}B8ExchangeSeconds`], 2)} s)` +
        ` vs one 2-thread instance ${fmt(threaded, 2)} s = ${fmt(8 / Number(threaded), 2)} img/s`);
      if (dp[`${key}B16StepSeconds`] !== undefined)
        console.log(`  ${label} 112x112 b16 (8 per worker): step ${fmt(dp[`${key}B16StepSeconds`], 2)} s = ${fmt(dp[`${key}B16ImagesPerSecond`], 2)} img/s`);
    }
    const profiled = results.filter((r) => r.iresnet18Profile);
    if (profiled.length) {
      console.log('');
      console.log('Where the IResNet-18 b8 step goes (tf.profile of one step, ms per kernel, top 10):');
      for (const r of profiled) console.log(`  ${r.name}: ${r.iresnet18Profile}`);
    }
    console.log('"-" = not measured; "missing kernel" = stock tfjs-wasm cannot run it.');
  }
}
