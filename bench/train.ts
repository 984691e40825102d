// npm run bench:train [-- --quick] [--json] [--steps N] [--warmup N] [--verbose]
// Training throughput of full steps (data pipeline + backbone + head + backward + SGD) for the AttFC,
// FullFC and PartialFC (r=0.1) heads: at the demo's size (MobileFaceNet x0.5, 32x32) and at 112x112
// (MobileFaceNet, IResNet-18), each in its own process with WASM's default engine (data-parallel replicas;
// AttFC also in one multi-threaded instance) and, when its addon is built, backend torch. Images come
// from synthetic sets generated once into .cache/bench. AttFC pays for the class encoder's (K-1)*B extra
// forward images: "total img/s" counts them, "query img/s" does not. --quick: demo size only, few steps.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, table } from './lib/timing.js';
import { trainFlags, jobFlags, parseOrExit } from './lib/flags.js';

const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), '..');
const args = process.argv.slice(2);

if (args[0] === '--child') {
  const { runThroughputChild } = await import('./lib/trainThroughput.js');
  await runThroughputChild(parseOrExit('bench:train child', jobFlags, args.slice(1)).job as import('./lib/trainThroughput.js').ThroughputJob);
  process.exit(0);
}
const flags = parseOrExit('bench:train', trainFlags, args);

const { synthesize } = await import('../src/data/synthetic/index.js');
const { formatBytes } = await import('../src/engine/index.js');
const { DEMO_SETUP, FULL_SETUPS, THROUGHPUT_HEADS } = await import('./lib/trainThroughput.js');
const { runChildren } = await import('./lib/trainProcess.js');
const { torchAvailable } = await import('../src/engine/torch/index.js');
type ThroughputJob = import('./lib/trainThroughput.js').ThroughputJob;
type ThroughputResult = import('./lib/trainThroughput.js').ThroughputResult;

const { json, quick, verbose } = flags;
// per setup unless given (--quick: 2 + 3)
const warmupOption = flags.warmup ?? (quick ? 2 : undefined);
const stepsOption = flags.steps ?? (quick ? 3 : undefined);
const log = (s: string) => process.stderr.write(s + '\n');
const setups = quick ? [DEMO_SETUP] : FULL_SETUPS;
const loadBefore = os.loadavg()[0];

// One synthetic set per input size: 1,000 identities (FC/PFC heads of that size), 4 images each.
const IDENTITIES = 1000;
const IMAGES_PER_IDENTITY = 4;
const cache = path.join(root, '.cache', 'bench');
const dataFor = new Map<number, string>();
for (const size of [...new Set(setups.map((s) => s.inputSize))]) {
  const dir = path.join(cache, `train-synth-${IDENTITIES}x${IMAGES_PER_IDENTITY}-${size}px`);
  const s = await synthesize(dir, { identities: IDENTITIES, imagesPerIdentity: IMAGES_PER_IDENTITY, size, seed: 0, verifyPairs: 0 }, (done, total) => {
    if (done === total || done % 2000 === 0) log(`bench:train: synthetic ${size}x${size} images ${done}/${total}`);
  });
  log(`bench:train: data ${dir} (${s.cached ? 'cached' : `made in ${s.seconds.toFixed(0)} s`})`);
  dataFor.set(size, dir);
}

// Every head with WASM's default engine (data-parallel replicas), AttFC once more in one 2-thread WASM
// instance for the comparison, and every head on backend torch (one process, libtorch's threads).
const torch = torchAvailable();
if (flags.backend === 'torch' && !torch.ok) {
  log(`bench:train: backend torch: ${torch.reason}`);
  process.exit(1);
}
if (flags.backend === 'all' && !torch.ok) log(`bench:train: backend torch skipped: ${torch.reason}`);
const engines: { backend: 'wasm' | 'torch'; parallel: 'data' | 'threads'; heads: typeof THROUGHPUT_HEADS }[] = [
  ...(flags.backend !== 'torch'
    ? [
        { backend: 'wasm' as const, parallel: 'data' as const, heads: THROUGHPUT_HEADS },
        { backend: 'wasm' as const, parallel: 'threads' as const, heads: [THROUGHPUT_HEADS[0]] },
      ]
    : []),
  ...(flags.backend !== 'wasm' && torch.ok ? [{ backend: 'torch' as const, parallel: 'threads' as const, heads: THROUGHPUT_HEADS }] : []),
];
const jobs: ThroughputJob[] = setups.flatMap((setup) =>
  engines.flatMap(({ backend, parallel, heads }) =>
    heads.map((head) => ({
      setup,
      head,
      data: dataFor.get(setup.inputSize)!,
      output: path.join(cache, 'train-runs', `${setup.backbone}-${setup.inputSize}-${head.head}-${backend}-${parallel}`),
      warmupSteps: warmupOption ?? setup.warmupSteps,
      measuredSteps: stepsOption ?? setup.measuredSteps,
      seed: 0,
      parallel,
      backend,
    })),
  ),
);
log(`bench:train: ${jobs.length} configurations, one process at a time`);
const results = (await runChildren(
  self,
  jobs.map((j) => ({ label: `${j.setup.name} ${j.head.label} (${j.backend}, ${j.parallel})`, args: ['--child', '--job', JSON.stringify(j)] })),
  {
    verbose,
    onStart: (job, i) => log(`bench:train: [${i + 1}/${jobs.length}] ${job.label} ...`),
    onDone: (job, i, r) => log(`bench:train: [${i + 1}/${jobs.length}] ${job.label}: ${(r as ThroughputResult).queryImagesPerSec.toFixed(1)} query img/s`),
  },
)) as ThroughputResult[];

const summary = {
  machine: machineInfo(),
  engines: [...new Set(results.map((r) => r.engine))],
  identities: IDENTITIES,
  loadAverage: { start: loadBefore, end: os.loadavg()[0] },
  runs: results,
};
if (json) {
  console.log(JSON.stringify(summary));
} else {
  console.log(`attfc bench:train — ${summary.engines.join('; ')} — ${JSON.stringify(summary.machine)}`);
  console.log(
    table(
      results.map((r) => [
        r.setup,
        r.label,
        r.backend === 'torch' ? `torch ${os.cpus().length} threads` : r.parallel === 'data' ? `data-parallel ${os.cpus().length}x1` : `threads 1x${os.cpus().length}`,
        String(r.batchSize),
        `${r.warmupSteps}+${r.measuredSteps}`,
        r.keyImagesPerStep ? `${r.batchSize}+${r.keyImagesPerStep}` : String(r.batchSize),
        r.stepSeconds.toFixed(2),
        `${r.stepSecondsMin.toFixed(2)}-${r.stepSecondsMax.toFixed(2)}`,
        r.queryImagesPerSec.toFixed(1),
        r.totalImagesPerSec.toFixed(1),
        r.backend === 'torch' ? `native ${formatBytes(r.peakNativeBytes)}` : formatBytes(r.peakHeapBytes),
        `${(100 * r.dataWaitShare).toFixed(1)}%`,
      ]),
      ['model', 'head', 'engine', 'batch', 'steps', 'images/step', 's/step', 'range', 'query img/s', 'total img/s', 'peak memory', 'data wait'],
    ),
  );
  console.log(
    `steps = warm-up + measured (s/step is the mean of the measured ones, range the fastest and slowest); ${IDENTITIES} synthetic identities. AttFC pays for the class encoder's ` +
      `(K-1)*B extra forward images (no backward): "total img/s" includes them, "query img/s" counts training samples only.`,
  );
  console.log('engine: "data-parallel Rx1" = the WASM default, one single-thread WASM replica per core, each on its share of the batch; "threads 1xT" = one WASM instance with a thread per core (--parallel threads); "torch" = backend torch (libtorch addon), one process. Peak memory: the fullest replica\'s WASM heap (each has its own 4 GiB heap; rank 0 also holds the head), or the libtorch memory held by tensors on torch.');
  console.log(`load average ${loadBefore.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end (other jobs on the machine slow every number)`);
}
