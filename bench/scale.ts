// npm run bench:scale [-- --quick] [--json] [--head attfc|fc|pfc] [--sample-rate r] [--backend wasm|torch]
//   [--identities n] [--steps n] [--resume-steps n] [--batch B] [--input-size 32|48] [--verbose] ...
// End-to-end training at WebFace42M's identity count (2,059,906) on SYNTHETIC faces rendered on demand
// (--data synth:<N>x3@32): MobileFaceNet, batch 128, AttFC with the reference DCC ratio 0.3, through the
// library's train(): the sampler, the data pipeline, the backbone, the class encoder, the head,
// checkpoints and resume. Reports the step time by part, RSS, WASM heap and libtorch memory, the
// checkpoint's size and write time, and whether a run resumed from the mid-run checkpoint (in a new
// process) takes exactly the losses of the uninterrupted run. --head fc / pfc show where the baselines
// stop: a refusal with the number, or their cost. Each run is its own process, one at a time.
import os from 'node:os';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, table } from './lib/timing.js';
import { jobFlags, parseOrExit, scaleFlags } from './lib/flags.js';

const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), '..');
const args = process.argv.slice(2);

if (args[0] === '--child') {
  const { runScaleChild } = await import('./lib/scale.js');
  await runScaleChild(parseOrExit('bench:scale child', jobFlags, args.slice(1)).job as import('./lib/scale.js').ScaleJob);
  process.exit(0);
}
const flags = parseOrExit('bench:scale', scaleFlags, args);

const { formatBytes } = await import('../src/engine/index.js');
const { torchAvailable } = await import('../src/engine/torch/index.js');
const { defaultQueueSize } = await import('../src/heads/attfc/index.js');
const { measureSamplerMemory } = await import('../src/data/samplerMemory.js');
const { runChildren, defaultBenchBackend } = await import('./lib/trainProcess.js');
type ScaleJob = import('./lib/scale.js').ScaleJob;
type ScaleRunResult = import('./lib/scale.js').ScaleRunResult;
type OkRun = Extract<ScaleRunResult, { ok: true }>;

const WEBFACE42M_IDENTITIES = 2_059_906;
const log = (s: string) => process.stderr.write(s + '\n');
const loadBefore = os.loadavg()[0];

const identities = flags.identities ?? (flags.quick ? 100_000 : WEBFACE42M_IDENTITIES);
const steps = flags.steps ?? (flags.quick ? 40 : 200);
const resumeAt = Math.floor(steps / 2);
const resumeSteps = Math.min(flags.resumeSteps ?? (flags.quick ? 5 : 10), steps - resumeAt);
const torch = torchAvailable();
const backend = flags.backend ?? (await defaultBenchBackend());
if (backend === 'torch' && !torch.ok) {
  log(`bench:scale: backend torch: ${torch.reason}`);
  process.exit(1);
}
const head = flags.head;
const data = `synth:${identities}x${flags.images}@${flags.inputSize}${flags.verifyPairs === 1000 ? '' : `,verify-pairs=${flags.verifyPairs}`}`;
const out = path.resolve(flags.output ?? path.join(root, '.cache', 'bench', `scale-${head}`));
const mainDir = path.join(out, 'run');
const resumeDir = path.join(out, 'resumed');
// the benchmark's own scratch folders, replaced on every run
rmSync(out, { recursive: true, force: true });

const config = {
  data,
  output: mainDir,
  backbone: 'mbf' as const,
  inputSize: flags.inputSize,
  widthMultiplier: flags.width,
  embeddingSize: flags.embeddingSize,
  head,
  ...(head === 'pfc' ? { sampleRate: flags.sampleRate } : {}),
  ...(head === 'attfc' ? { queueRatio: 0.3 } : {}),
  batchSize: flags.batch,
  steps,
  seed: 0,
  verify: [],
  verifyEvery: 0,
  logEvery: 10,
  checkpointEvery: resumeAt,
  keepCheckpoints: 2,
  export: false,
};
const dccSlots = head === 'attfc' ? defaultQueueSize(identities, flags.batch, 0.3) : 0;
const headLabel = head === 'attfc' ? `AttFC K=3, DCC ratio 0.3 (${dccSlots.toLocaleString('en-US')} slots)` : head === 'pfc' ? `Partial FC r=${flags.sampleRate}` : 'full FC';
log(
  `bench:scale: ${identities.toLocaleString('en-US')} SYNTHETIC identities rendered on demand (${data}), MobileFaceNet x${flags.width} ${flags.inputSize}x${flags.inputSize}, batch ${flags.batch}, ` +
    `${headLabel}, backend ${backend}; ${steps} steps with a checkpoint at ${resumeAt}, then ${resumeSteps} steps resumed from it in a new process`,
);

// the sampler's memory at this identity count (this process: nothing else is allocated yet)
const sampler = measureSamplerMemory(data, { batchSize: flags.batch, sampleNum: head === 'attfc' ? 3 : 1 });
/** The JS heap's growth; after a full GC it can come out slightly negative, which means no growth. */
const heapGrowth = (bytes: number) => (bytes < 0 ? `no growth (${formatBytes(-bytes)} less after GC)` : formatBytes(bytes));
log(`bench:scale: sampler over ${sampler.images.toLocaleString('en-US')} images: JS heap ${heapGrowth(sampler.heapBytes)}, typed arrays ${formatBytes(sampler.arrayBufferBytes)}`);

const env = { ATTFC_BACKEND: backend };
const run = async (job: ScaleJob, label: string): Promise<ScaleRunResult> => {
  const [r] = await runChildren(self, [{ label, args: ['--child', '--job', JSON.stringify(job)], env }], {
    verbose: flags.verbose,
    onStart: () => log(`bench:scale: ${label} ...`),
    onDone: (_j, _i, _r, seconds) => log(`bench:scale: ${label} done in ${seconds.toFixed(0)} s`),
  });
  return r as ScaleRunResult;
};
const main = await run({ phase: 'main', data, output: mainDir, config }, `uninterrupted run (${steps} steps)`);
let resumed: ScaleRunResult | null = null;
if (main.ok) {
  const mid = main.checkpoints.find((c) => c.step === resumeAt);
  if (!mid) throw new Error(`bench:scale: the uninterrupted run wrote no checkpoint at step ${resumeAt}`);
  resumed = await run({ phase: 'resume', data, output: resumeDir, resumeFrom: mid.path, resumeSteps, config }, `resumed run (from step ${resumeAt}, ${resumeSteps} steps)`);
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
/** Steps whose time is measured: after two warm-up steps. */
const measured = (r: OkRun) => r.steps.filter((s) => s.step > 2);
const summary = main.ok && resumed?.ok ? summarise(main, resumed) : null;

function summarise(m: OkRun, r: OkRun) {
  const ms = measured(m);
  const split = Object.fromEntries((['data', 'classEncoder', 'backbone', 'head', 'step'] as const).map((k) => [k, mean(ms.map((s) => s.times[k]))])) as Record<
    'data' | 'classEncoder' | 'backbone' | 'head' | 'step',
    number
  >;
  const mid = m.checkpoints.find((c) => c.step === resumeAt)!;
  const pairs = r.steps.map((s) => ({ step: s.step, resumed: s.loss, uninterrupted: m.steps.find((u) => u.step === s.step)?.loss ?? NaN }));
  const maxDiff = Math.max(...pairs.map((p) => Math.abs(p.resumed - p.uninterrupted)));
  return {
    stepSeconds: split.step,
    stepSplit: { data: split.data, classEncoder: split.classEncoder, backbone: split.backbone, head: split.head, other: split.step - split.data - split.classEncoder - split.backbone - split.head },
    wallSecondsPerStep: mean(ms.filter((s) => !m.checkpoints.some((c) => c.step === s.step - 1)).map((s) => s.wallSeconds)),
    samplesPerSec: flags.batch / split.step,
    rssBytes: Math.max(m.peakRssBytes, r.peakRssBytes),
    wasmHeapBytes: Math.max(...m.steps.map((s) => s.heapBytes), ...r.steps.map((s) => s.heapBytes)),
    nativeBytes: Math.max(...m.steps.map((s) => s.nativeBytes), ...r.steps.map((s) => s.nativeBytes)),
    checkpointBytes: mid.bytes,
    checkpointWriteSeconds: mid.writeSeconds,
    startSeconds: m.startSeconds,
    resumeStartSeconds: r.startSeconds,
    resumeExact: pairs.length === resumeSteps && pairs.every((p) => p.resumed === p.uninterrupted),
    resumeMaxLossDifference: maxDiff,
    resumeLosses: pairs,
    firstLoss: m.steps[0]?.loss ?? NaN,
    finalLoss: m.steps[m.steps.length - 1]?.loss ?? NaN,
    verification: m.verification,
    engine: m.engine,
  };
}

const refusal = !main.ok ? main.error : resumed && !resumed.ok ? `resume: ${resumed.error}` : null;
const result = {
  identities,
  images: identities * flags.images,
  data,
  head,
  ...(head === 'pfc' ? { sampleRate: flags.sampleRate } : {}),
  backbone: `mbf x${flags.width}`,
  inputSize: flags.inputSize,
  batchSize: flags.batch,
  embeddingSize: flags.embeddingSize,
  steps,
  resumeFrom: resumeAt,
  resumeSteps,
  dccSlots,
  backend,
  status: refusal ? ('refused' as const) : ('ok' as const),
  ...(refusal ? { refusal } : {}),
  ...(summary ?? {}),
  sampler,
  machine: machineInfo(),
  loadAverage: { start: loadBefore, end: os.loadavg()[0] },
};

if (flags.json) {
  console.log(JSON.stringify(result));
} else {
  console.log(`attfc bench:scale — ${JSON.stringify(result.machine)}`);
  console.log(
    `${identities.toLocaleString('en-US')} SYNTHETIC identities x ${flags.images} images rendered on demand at ${flags.inputSize}x${flags.inputSize}; MobileFaceNet x${flags.width}, batch ${flags.batch}, ${headLabel}; backend ${backend}`,
  );
  if (refusal || !summary) {
    console.log(`refused: ${refusal}`);
  } else {
    const s = summary;
    const pct = (x: number) => `${((100 * x) / s.stepSeconds).toFixed(0)}%`;
    console.log(`engine: ${s.engine}`);
    console.log(
      table(
        [
          ['step (mean of steps 3..)', s.stepSeconds.toFixed(3), '100%'],
          ['  data wait', s.stepSplit.data.toFixed(3), pct(s.stepSplit.data)],
          ['  class encoder (EMA + key forward)', s.stepSplit.classEncoder.toFixed(3), pct(s.stepSplit.classEncoder)],
          ['  backbone (forward, backward, SGD)', s.stepSplit.backbone.toFixed(3), pct(s.stepSplit.backbone)],
          ['  head (loss, backward, update)', s.stepSplit.head.toFixed(3), pct(s.stepSplit.head)],
          ['  other', s.stepSplit.other.toFixed(3), pct(s.stepSplit.other)],
        ],
        ['part', 'seconds', 'share'],
      ),
    );
    console.log(`samples/s ${s.samplesPerSec.toFixed(1)}; wall time between steps ${s.wallSecondsPerStep.toFixed(3)} s; start-up ${s.startSeconds.toFixed(1)} s`);
    console.log(`memory: peak RSS ${formatBytes(s.rssBytes)}, WASM heap ${formatBytes(s.wasmHeapBytes)}, libtorch ${formatBytes(s.nativeBytes)}`);
    console.log(`sampler: JS heap ${heapGrowth(sampler.heapBytes)}, typed arrays ${formatBytes(sampler.arrayBufferBytes)} for ${sampler.images.toLocaleString('en-US')} images`);
    console.log(`checkpoint at step ${resumeAt}: ${formatBytes(s.checkpointBytes)}, written in ${s.checkpointWriteSeconds.toFixed(1)} s; the resumed process started stepping after ${s.resumeStartSeconds.toFixed(1)} s`);
    console.log(
      `resume from step ${resumeAt}: ${s.resumeExact ? 'EXACT' : 'NOT exact'} (largest loss difference ${s.resumeMaxLossDifference}) over ${resumeSteps} steps: ` +
        s.resumeLosses.map((p) => `${p.step}: ${p.resumed.toFixed(6)}${p.resumed === p.uninterrupted ? '' : ` vs ${p.uninterrupted.toFixed(6)}`}`).join(', '),
    );
    console.log(`loss ${s.firstLoss.toFixed(3)} at step 1, ${s.finalLoss.toFixed(3)} at step ${steps}`);
    for (const v of s.verification) console.log(`verification ${v.name} (SYNTHETIC held-out identities): accuracy ${(100 * v.accuracy).toFixed(2)}% on ${v.pairs} pairs`);
  }
  console.log(`load average ${loadBefore.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end (other jobs on the machine slow every number)`);
}
