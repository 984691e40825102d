// npm run bench:accuracy [-- --quick] [--json] [--seeds 0,1] [--steps N] [--parallel N] [--verbose] [--no-equal-time]
// Head parity on SYNTHETIC faces: FullFC, PartialFC (as many centres as the DCC), DCQ-style (AttFC K=2),
// AttFC mean attention, AttFC softmax attention (default) and AttFC without masking, trained with the
// same data, backbone, recipe and seeds; verification accuracy (10 folds) and TAR@FAR=1e-3 on held-out
// identities, plus GCC-vs-true-centre cosines and attention by key quality for AttFC. Two comparisons:
// equal steps (every head the protocol's steps), then equal time (the heads whose step is cheaper than
// AttFC's, which forwards K-1 extra key images, get the steps that fit in AttFC's measured train time).
// Each run is a child process on the engine attfc picks (ATTFC_BACKEND chooses); by default two run side
// by side with one thread each (two single-thread workers beat one 2-thread process on this 2-core machine). Writes bench/results/accuracy.json
// (accuracy-quick.json with --quick).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, table } from './lib/timing.js';
import { accuracyFlags, jobFlags, parseOrExit } from './lib/flags.js';

const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), '..');
const args = process.argv.slice(2);

if (args[0] === '--child') {
  const { runAccuracyChild } = await import('./lib/accuracyRun.js');
  await runAccuracyChild(parseOrExit('bench:accuracy child', jobFlags, args.slice(1)).job as import('./lib/accuracyRun.js').AccuracyJob);
  process.exit(0);
}
const flags = parseOrExit('bench:accuracy', accuracyFlags, args);

const { synthesize } = await import('../src/data/synthetic/index.js');
const { FULL_PROTOCOL, QUICK_PROTOCOL, headVariants, runConfig, describeProtocol, dccSize } = await import('./lib/accuracyProtocol.js');
const { runChildren, defaultBenchBackend } = await import('./lib/trainProcess.js');
const { summarise } = await import('./lib/accuracyStats.js');
type AccuracyJob = import('./lib/accuracyRun.js').AccuracyJob;
type AccuracyRunResult = import('./lib/accuracyRun.js').AccuracyRunResult;

const { json, quick, verbose, parallel } = flags;
const base = quick ? QUICK_PROTOCOL : FULL_PROTOCOL;
const protocol = { ...base, steps: flags.steps ?? base.steps, seeds: flags.seeds ?? base.seeds };
const log = (s: string) => process.stderr.write(s + '\n');
const t0 = performance.now();
const loadBefore = os.loadavg()[0];

const cache = path.join(root, '.cache', 'bench');
const p = protocol;
const dataDir = path.join(cache, `accuracy-synth-${p.identities}x${p.imagesPerIdentity}-${p.size}px-v${p.verifyIdentities}-p${p.verifyPairs}-s${p.dataSeed}`);
log(`bench:accuracy${quick ? ' --quick' : ''}: ${describeProtocol(p)}`);
const synth = await synthesize(
  dataDir,
  { identities: p.identities, imagesPerIdentity: p.imagesPerIdentity, size: p.size, seed: p.dataSeed, verifyIdentities: p.verifyIdentities, verifyPairs: p.verifyPairs },
  (done, total) => {
    if (done === total || done % 2000 === 0) log(`bench:accuracy: synthetic images ${done}/${total}`);
  },
);
log(`bench:accuracy: data ${dataDir} (${synth.cached ? 'cached' : `made in ${synth.seconds.toFixed(0)} s`}; ${synth.lowQualityImages} of ${synth.trainImages} training images are low quality)`);
const bin = path.join(dataDir, 'synth_val.bin');

const variants = headVariants(p);
const runsDir = path.join(cache, quick ? 'accuracy-runs-quick' : 'accuracy-runs');
const workers = parallel > 1 ? 1 : 2;
const jobs: AccuracyJob[] = [
  { kind: 'baseline', backbone: p.backbone, inputSize: p.size, widthMultiplier: p.widthMultiplier, seed: p.seeds[0], bin, evalBatch: 128 },
];
for (const seed of p.seeds)
  for (const v of variants)
    jobs.push({
      kind: 'train',
      variant: v.variant,
      head: v.head,
      seed,
      config: runConfig(p, v, seed, dataDir, path.join(runsDir, `${v.variant}-seed${seed}`), workers),
      bin,
      evalBatch: 128,
      ...(v.head === 'attfc' ? { centres: { identities: p.centreIdentities, draws: p.centreDraws } } : {}),
    });
const label = (j: AccuracyJob) => (j.kind === 'baseline' ? 'untrained baseline' : `${j.variant} seed ${j.seed}`);
// the engine every run uses: ATTFC_BACKEND when set, else torch when its addon is built, else wasm
const backend = await defaultBenchBackend();
const childEnv = (): Record<string, string> => ({ ATTFC_BACKEND: backend, ...(parallel > 1 ? { ATTFC_THREADS: '1' } : {}) });
log(`bench:accuracy: ${jobs.length} jobs, ${parallel} at a time, backend ${backend}${parallel > 1 ? ' (1 thread each)' : ''}`);

const results = (await runChildren(
  self,
  jobs.map((j) => ({ label: label(j), args: ['--child', '--job', JSON.stringify(j)], env: childEnv() })),
  {
    concurrency: parallel,
    verbose,
    onStart: (job, i) => log(`bench:accuracy: [${i + 1}/${jobs.length}] ${job.label} ...`),
    onDone: (job, i, r, seconds) => {
      const x = r as AccuracyRunResult;
      log(`bench:accuracy: [${i + 1}/${jobs.length}] ${job.label}: accuracy ${x.accuracy.toFixed(4)} +- ${x.std.toFixed(4)} (synthetic), ${seconds.toFixed(0)} s`);
    },
  },
)) as AccuracyRunResult[];

const baseline = results[0];
const trained = results.slice(1);

// ---- equal time: the cheaper heads again, with the steps that fit in AttFC's (softmax) train time ----
const meanSeconds = (variant: string) => summarise(trained.filter((r) => r.variant === variant).map((r) => r.trainSeconds)).mean;
const attfcSeconds = meanSeconds('attfc');
const equalTime = flags.equalTime
  ? variants
      .filter((v) => v.variant !== 'attfc' && meanSeconds(v.variant) < 0.95 * attfcSeconds)
      .map((v) => ({ v, steps: Math.round((p.steps * attfcSeconds) / meanSeconds(v.variant)) }))
  : [];
const equalJobs: AccuracyJob[] = [];
for (const seed of p.seeds)
  for (const { v, steps } of equalTime)
    equalJobs.push({
      kind: 'train',
      variant: `${v.variant}-equal-time`,
      head: v.head,
      seed,
      config: { ...runConfig(p, v, seed, dataDir, path.join(runsDir, `${v.variant}-equal-time-seed${seed}`), workers), steps },
      bin,
      evalBatch: 128,
    });
if (equalJobs.length) log(`bench:accuracy: equal time: ${equalTime.map(({ v, steps }) => `${v.label} ${steps} steps`).join(', ')} (AttFC took ${attfcSeconds.toFixed(0)} s per run)`);
const equalResults = (await runChildren(
  self,
  equalJobs.map((j) => ({ label: label(j), args: ['--child', '--job', JSON.stringify(j)], env: childEnv() })),
  { concurrency: parallel, verbose, onStart: (job, i) => log(`bench:accuracy: equal time [${i + 1}/${equalJobs.length}] ${job.label} ...`) },
)) as AccuracyRunResult[];
const equalRuns = equalTime.map(({ v, steps }) => {
  const mine = equalResults.filter((r) => r.variant === `${v.variant}-equal-time`);
  const acc = summarise(mine.map((r) => r.accuracy));
  return { variant: `${v.variant}-equal-time`, label: `${v.label}, equal time (${steps} steps)`, steps, accuracy: acc.mean, std: summarise(mine.map((r) => r.std)).mean, seeds: mine.length, seedStd: acc.std, seedMin: acc.min, seedMax: acc.max, trainSeconds: summarise(mine.map((r) => r.trainSeconds)).mean, tarAtFar1e3: summarise(mine.map((r) => r.tarAtFar1e3)).mean };
});
const pct = (x: number, d = 2) => (Number.isFinite(x) ? (100 * x).toFixed(d) : '-');
const runs = variants.map((v) => {
  const mine = trained.filter((r) => r.variant === v.variant);
  const acc = summarise(mine.map((r) => r.accuracy));
  return {
    head: v.head,
    variant: v.variant,
    label: v.label,
    accuracy: acc.mean,
    std: summarise(mine.map((r) => r.std)).mean,
    tarAtFar1e3: summarise(mine.map((r) => r.tarAtFar1e3)).mean,
    seeds: mine.length,
    seedStd: acc.std,
    seedMin: acc.min,
    seedMax: acc.max,
    trainSeconds: summarise(mine.map((r) => r.trainSeconds)).mean,
    perSeed: mine.map((r) => ({ seed: r.seed, accuracy: r.accuracy, std: r.std, tarAtFar1e3: r.tarAtFar1e3, auc: r.auc, finalLoss: r.finalLoss, trainSeconds: r.trainSeconds, evalSeconds: r.evalSeconds, training: r.training, centres: r.centres })),
  };
});

const attfcRuns = trained.filter((r) => r.variant === 'attfc');
const centreMean = (key: keyof NonNullable<AccuracyRunResult['centres']>) => summarise(attfcRuns.map((r) => Number(r.centres?.[key] ?? NaN))).mean;
const centresByVariant = Object.fromEntries(
  variants
    .filter((v) => v.head === 'attfc')
    .map((v) => {
      const mine = trained.filter((r) => r.variant === v.variant && r.centres);
      const keys = ['gccTccCosine', 'singleImageTccCosine', 'gccNearestTccAccuracy', 'singleNearestTccAccuracy', 'attentionLowQuality', 'attentionHighQuality'] as const;
      return [v.variant, Object.fromEntries(keys.map((k) => [k, summarise(mine.map((r) => r.centres![k])).mean]))];
    }),
);
const summary = {
  synthetic: true,
  note: 'SYNTHETIC faces (attfc synth): for comparing heads and checking that training works; says nothing about real-face accuracy',
  runs,
  equalTime: { definition: "heads cheaper per step than AttFC (softmax) rerun with steps = protocol steps x AttFC's mean train seconds / theirs", attfcTrainSeconds: attfcSeconds, runs: equalRuns },
  gccTccCosine: centreMean('gccTccCosine'),
  singleImageTccCosine: centreMean('singleImageTccCosine'),
  attentionLowQuality: centreMean('attentionLowQuality'),
  attentionHighQuality: centreMean('attentionHighQuality'),
  centres: {
    definition:
      'TCC = normalised mean of the normalised f_q embeddings of all images of a training identity; GCC from one f_q query and K-1 f_k keys (sampler-style draws); single = normalised f_k embedding of one key; attention split at quality 0.5; softmax-attention AttFC, mean over seeds',
    gccTccCosineFk: centreMean('gccTccCosineFk'),
    singleImageTccCosineFk: centreMean('singleImageTccCosineFk'),
    gccNearestTccAccuracy: centreMean('gccNearestTccAccuracy'),
    singleNearestTccAccuracy: centreMean('singleNearestTccAccuracy'),
    lowQualityKeys: centreMean('lowQualityKeys'),
    highQualityKeys: centreMean('highQualityKeys'),
    byVariant: centresByVariant,
  },
  attentionTraining: {
    definition: 'head diagnostics attentionLowQuality/HighQuality averaged over the second half of training (softmax AttFC, mean over seeds)',
    low: summarise(attfcRuns.map((r) => r.training.attentionLowQuality ?? NaN)).mean,
    high: summarise(attfcRuns.map((r) => r.training.attentionHighQuality ?? NaN)).mean,
  },
  baseline: { variant: 'untrained', accuracy: baseline.accuracy, std: baseline.std, tarAtFar1e3: baseline.tarAtFar1e3, note: 'random-init f_q with batch-statistics BN' },
  protocol: { ...p, dccSize: dccSize(p), quick, parallel, backend, threadsPerRun: parallel > 1 ? 1 : 'default', description: describeProtocol(p) },
  data: { dir: dataDir, trainImages: synth.trainImages, lowQualityImages: synth.lowQualityImages, verifyPairs: synth.verifyPairs, verifyIdentities: synth.verifyIdentities },
  machine: machineInfo(),
  loadAverage: { start: loadBefore, end: os.loadavg()[0] },
  totalSeconds: (performance.now() - t0) / 1000,
};

mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
// --quick results never replace the published full-protocol ones
const resultsFile = path.join('bench', 'results', quick ? 'accuracy-quick.json' : 'accuracy.json');
writeFileSync(path.join(root, resultsFile), JSON.stringify(summary, null, 2) + '\n');

if (json) {
  console.log(JSON.stringify(summary));
} else {
  const rows = runs.map((r) => [
    r.label,
    pct(r.accuracy),
    pct(r.std),
    r.seeds > 1 ? `${pct(r.seedStd)} [${pct(r.seedMin)}, ${pct(r.seedMax)}]` : '-',
    r.tarAtFar1e3.toFixed(3),
    String(r.seeds),
    r.trainSeconds.toFixed(0),
  ]);
  rows.push(['untrained f_q (reference)', pct(baseline.accuracy), pct(baseline.std), '-', baseline.tarAtFar1e3.toFixed(3), '1', '0']);
  for (const r of equalRuns)
    rows.push([r.label, pct(r.accuracy), pct(r.std), r.seeds > 1 ? `${pct(r.seedStd)} [${pct(r.seedMin)}, ${pct(r.seedMax)}]` : '-', r.tarAtFar1e3.toFixed(3), String(r.seeds), r.trainSeconds.toFixed(0)]);
  const c = summary;
  console.log(`attfc bench:accuracy — SYNTHETIC faces (not real-face accuracy) — ${JSON.stringify(summary.machine)}`);
  console.log(describeProtocol(p));
  console.log('');
  console.log(
    table(rows, ['head (synthetic)', 'accuracy %', '10-fold std', 'seed std [min, max]', 'TAR@FAR=1e-3', 'seeds', 'train s/run']),
  );
  console.log('');
  console.log(`accuracy = mean over seeds of the 10-fold mean; 10-fold std = mean over seeds; seed std = population std of the per-seed accuracies.`);
  console.log(
    `AttFC (softmax) class centres on ${p.centreIdentities} training identities: cos(GCC, true centre) ${c.gccTccCosine.toFixed(4)} vs cos(single image, true centre) ${c.singleImageTccCosine.toFixed(4)}` +
      ` (true centre under f_k: ${c.centres.gccTccCosineFk.toFixed(4)} vs ${c.centres.singleImageTccCosineFk.toFixed(4)});` +
      ` nearest true centre is its own: GCC ${pct(c.centres.gccNearestTccAccuracy, 1)}% vs single image ${pct(c.centres.singleNearestTccAccuracy, 1)}%`,
  );
  console.log(
    `attention weight per key: low-quality ${c.attentionLowQuality.toFixed(4)} vs high-quality ${c.attentionHighQuality.toFixed(4)} (final model, ${c.centres.lowQualityKeys.toFixed(0)} / ${c.centres.highQualityKeys.toFixed(0)} keys);` +
      ` during training (2nd half) ${c.attentionTraining.low.toFixed(4)} vs ${c.attentionTraining.high.toFixed(4)}; uniform would be ${(1 / 2).toFixed(4)} (K-1 = 2 keys)`,
  );
  const f4 = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(4) : '-');
  console.log('');
  console.log(
    table(
      variants
        .filter((v) => v.head === 'attfc')
        .map((v) => {
          const m = centresByVariant[v.variant] as Record<string, number>;
          return [v.label, f4(m.gccTccCosine), f4(m.singleImageTccCosine), pct(m.gccNearestTccAccuracy, 1), pct(m.singleNearestTccAccuracy, 1), f4(m.attentionLowQuality), f4(m.attentionHighQuality)];
        }),
      ['class centres (synthetic)', 'cos(GCC,TCC)', 'cos(single,TCC)', 'GCC nearest own %', 'single nearest own %', 'attn low-q', 'attn high-q'],
    ),
  );
  console.log(`total ${(summary.totalSeconds / 60).toFixed(1)} min; load average ${loadBefore.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end; results in ${resultsFile}`);
}
