// The built-in demo behind `npm start`: synthetic faces (cached) -> AttFC training -> verification on
// held-out synthetic identities -> TensorFlow.js export -> a short report that puts the trained model's
// accuracy next to the untrained network's on the same pairs, and states the training budget.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { synthesize } from '../data/synthetic/index.js';
import { train } from '../train/trainer.js';
import { parseTrainConfig } from '../train/config.js';
import { backboneOptions } from '../train/runPlan.js';
import { type VerificationResult } from '../eval/evaluateBin.js';
import { evaluateUntrained } from '../eval/untrained.js';
import { describeEngine, engineInfo } from '../engine/index.js';
import { createProgressView, formatDuration } from '../train/progress.js';
import { DEMO, type DemoSetup } from './demoSetup.js';

export async function runDemo(out: string, steps: number, setup: DemoSetup = DEMO): Promise<void> {
  const d = setup;
  const say = (s: string) => process.stderr.write(s + '\n');
  say(
    `attfc demo: train AttFC on SYNTHETIC faces (${d.identities} identities x ${d.imagesPerIdentity} images, ${d.size}x${d.size}), ` +
      `MobileFaceNet x${d.widthMultiplier}, ${steps} steps of batch ${d.batchSize}, then verify on held-out synthetic identities.\n` +
      `Short-run settings: class-encoder EMA ${d.emaMomentum} (paper: 0.999 over 5 epochs), ArcFace s ${d.marginS} m ${d.marginM2} (paper: 64, 0.5).\n` +
      (d === DEMO
        ? `It takes 4-5 minutes on an idle 2-core CPU on WASM, about 2 on the native backend (longer when the machine is busy); the data set is cached for later runs.`
        : 'A tiny set-up for tests: the numbers it prints mean nothing.'),
  );
  const t0 = performance.now();
  const dataDir = path.join(out, 'data');
  const synth = await synthesize(
    dataDir,
    { identities: d.identities, imagesPerIdentity: d.imagesPerIdentity, size: d.size, seed: d.seed, verifyIdentities: d.verifyIdentities, verifyPairs: d.verifyPairs },
    (done, total) => {
      if (done === total || done % 1000 === 0) say(`attfc demo: synthetic images ${done}/${total}`);
    },
  );
  const view = createProgressView(process.stderr, 50);
  const bin = path.join(dataDir, 'synth_val.bin');
  const config = parseTrainConfig({
    data: dataDir,
    output: path.join(out, 'run'),
    backbone: d.backbone,
    inputSize: d.size,
    widthMultiplier: d.widthMultiplier,
    head: 'attfc',
    batchSize: d.batchSize,
    steps,
    warmupSteps: Math.round(steps / 20),
    emaMomentum: d.emaMomentum,
    marginS: d.marginS,
    marginM2: d.marginM2,
    seed: d.seed,
    verify: [bin],
    verifyEvery: 0,
    logEvery: 50,
    checkpointEvery: 0,
  });
  // a demo run replaces the previous demo run (one trained on this demo's data), never another run
  const handle = train(config, { log: (l) => view.log(l), overwrite: isDemoRun(path.join(out, 'run'), dataDir) });
  handle.on('step', (m) => view.update(m));
  const r = await handle.done;
  view.stop();
  const v = r.verification[0];
  // the same protocol on f_q as training started it (same architecture and seed): what training added
  const before = v ? await evaluateUntrained(config.backbone, backboneOptions(config), bin, Math.min(64, config.batchSize)) : null;
  const engine = engineInfo();
  const replicas = dataParallelReplicas(r.output);
  const trainedOn = engine ? `${replicas > 1 ? `data-parallel ${replicas} x ` : ''}${describeEngine(engine).replace(/^backend /, '')}` : '';
  const total = (performance.now() - t0) / 1000;
  const pct = (x: VerificationResult) => `${(100 * x.accuracy).toFixed(2)}% +- ${(100 * x.std).toFixed(2)}`;
  const lines = [
    '',
    'attfc demo report (SYNTHETIC data)',
    `  identities   ${r.identities} training (${r.images} images) + held-out verification identities`,
    `  data         ${dataDir} (${synth.cached ? 'cached' : `made in ${formatDuration(synth.seconds)}`})`,
    `  training     ${r.steps} steps of ${d.batchSize} in ${formatDuration(r.seconds)}, ${r.samplesPerSec.toFixed(1)} samples/s, final loss ${r.finalLoss.toFixed(3)}`,
    `  budget       ${r.steps} steps x ${d.batchSize} = ${r.steps * d.batchSize} samples (${((r.steps * d.batchSize) / r.images).toFixed(1)} epochs) in ${formatDuration(r.seconds)} of training${trainedOn ? ` on ${trainedOn}` : ''}`,
    v
      ? `  verification ${v.name}: accuracy ${pct(v)} over 10 folds, VAL@FAR=1e-3 ${v.valAtFar1e3.val.toFixed(3)} (${v.pairs} held-out pairs)`
      : '  verification (none)',
    ...(before ? [`  untrained    the same pairs and protocol on the network before training: accuracy ${pct(before)} (batch-statistics batch norm)`] : []),
    `  model        ${r.modelDir} (TensorFlow.js; only f_q is exported)`,
    ...(v ? [`  threshold    same face if cosine similarity >= ${v.threshold.similarity.toFixed(5)} (recorded in the model for verify() and the browser page)`] : []),
    `  logs         ${r.output}/metrics.jsonl`,
    `  total time   ${formatDuration(total)}`,
    `Next: attfc eval --model ${r.modelDir} --bin ${path.join(dataDir, 'synth_val.bin')} --plot roc.png`,
    `      attfc serve ${r.modelDir}   (the browser face verifier; npm run demo:browser does this for runs/demo)`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

/** The data-parallel replicas a run trained with (its environment.json), 1 when it had none. */
function dataParallelReplicas(runDir: string): number {
  try {
    const env = JSON.parse(readFileSync(path.join(runDir, 'environment.json'), 'utf8')) as { parallel?: { mode?: string; replicas?: number } };
    return env.parallel?.mode === 'data' ? (env.parallel.replicas ?? 1) : 1;
  } catch {
    return 1;
  }
}

/** Whether `runDir` holds a run trained on `dataDir` (a previous demo), by its config.json. */
function isDemoRun(runDir: string, dataDir: string): boolean {
  try {
    const c = JSON.parse(readFileSync(path.join(runDir, 'config.json'), 'utf8')) as { data?: unknown };
    return typeof c.data === 'string' && path.resolve(c.data) === path.resolve(dataDir);
  } catch {
    return false;
  }
}
