// npm run bench:embed [-- --models r50,mbf] [--batch 32] [--rounds 3] [--seconds 8] [--no-wasm] [--json]
// Batch inference throughput (images/s) of IResNet-50 and MobileFaceNet at 112x112 the way `attfc embed`
// runs a model folder (backend torch: the native graph with folded batch norms; WASM: the tfjs-layers
// model), against onnxruntime-node running the same model written by `attfc export --onnx`, every
// engine with 2 threads and each in its own process. Rounds alternate torch and onnxruntime (WASM, much
// slower, runs in the first round only); a round's ratio is torch's images/s over onnxruntime's. Image
// decoding is not timed (it is the same for every engine): every engine embeds one seeded batch of
// normalised images over and over. The models carry seeded random weights whose batch-norm running
// statistics were set by training-mode forward passes, so activations stay in a realistic range; the
// first images' embeddings are compared across engines.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { embedChildFlags, embedFlags, parseOrExit, type EmbedEngine, type EmbedModelId } from './lib/flags.js';
import { machineInfo, table } from './lib/timing.js';

const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), '..');
const args = process.argv.slice(2);

if (args[0] === '--child') {
  const { runEmbedChild } = await import('./lib/embedChild.js');
  await runEmbedChild(parseOrExit('bench:embed child', embedChildFlags, args.slice(1)));
  process.exit(0);
}
if (args[0] === '--prepare') {
  const { prepareEmbedModel } = await import('./lib/embedModels.js');
  await prepareEmbedModel(args[1] as EmbedModelId, args[2]);
  process.exit(0);
}

const flags = parseOrExit('bench:embed', embedFlags, args);
const log = (s: string) => process.stderr.write(s + '\n');
const { torchAvailable } = await import('../src/engine/torch/index.js');
const torch = torchAvailable();
if (!torch.ok) {
  log(`bench:embed: backend torch: ${torch.reason}`);
  process.exit(1);
}

function run(argv: string[], what: string): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...argv], { encoding: 'utf8', maxBuffer: 1 << 26, cwd: root });
  if (r.status !== 0) throw new Error(`bench:embed: ${what} failed:\n${r.stderr}`);
  return r.stdout;
}

// the model folders, made once: seeded weights + calibrated running statistics, then attfc export --onnx
const dirs = new Map<EmbedModelId, string>();
for (const id of flags.models) {
  const dir = path.join(root, '.cache', 'bench', 'embed', `${id}-112`);
  if (!existsSync(path.join(dir, 'model.onnx'))) {
    mkdirSync(dir, { recursive: true });
    log(`bench:embed: making ${dir} ...`);
    run([self, '--prepare', id, dir], `making the ${id} model`);
    run([path.join(root, 'src', 'cli', 'main.ts'), 'export', dir, '--onnx', path.join(dir, 'model.onnx')], `attfc export ${dir} --onnx`);
  }
  dirs.set(id, dir);
}

interface EngineRun {
  imagesPerSecond: number;
  runs: string;
  probe: number[];
}
const child = (engine: EmbedEngine, id: EmbedModelId): EngineRun => {
  log(`bench:embed: ${id}, ${engine} ...`);
  const out = run([self, '--child', '--engine', engine, '--dir', dirs.get(id) as string, '--batch', String(flags.batch), '--seconds', String(flags.seconds)], `${engine} on ${id}`);
  return JSON.parse(out.trim().split('\n').pop() as string) as EngineRun;
};

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const range = (v: number[], d: number) => `${Math.min(...v).toFixed(d)}-${Math.max(...v).toFixed(d)}`;

/** Largest cosine distance between the engines' embeddings of the same images. */
function cosineDistance(a: number[], b: number[], dim: number): number {
  let worst = 0;
  for (let i = 0; i < a.length; i += dim) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let j = i; j < i + dim; j++) {
      ab += a[j] * b[j];
      aa += a[j] * a[j];
      bb += b[j] * b[j];
    }
    worst = Math.max(worst, 1 - ab / Math.sqrt(aa * bb));
  }
  return worst;
}

const loads = [os.loadavg()[0]];
const results = new Map<EmbedModelId, { torch: number[]; ort: number[]; ratios: number[]; wasm?: number; runs: Record<string, string>; agreement: Record<string, number> }>();
for (const id of flags.models) results.set(id, { torch: [], ort: [], ratios: [], runs: {}, agreement: {} });
for (let round = 1; round <= flags.rounds; round++) {
  for (const id of flags.models) {
    const r = results.get(id)!;
    const t = child('torch', id);
    const o = child('onnxruntime', id);
    r.torch.push(t.imagesPerSecond);
    r.ort.push(o.imagesPerSecond);
    r.ratios.push(t.imagesPerSecond / o.imagesPerSecond);
    r.runs.torch = t.runs;
    r.runs.onnxruntime = o.runs;
    const dim = 512;
    r.agreement['torch vs onnxruntime'] = cosineDistance(t.probe, o.probe, dim);
    if (round === 1 && flags.wasm) {
      const w = child('wasm', id);
      r.wasm = w.imagesPerSecond;
      r.runs.wasm = w.runs;
      r.agreement['wasm vs onnxruntime'] = cosineDistance(w.probe, o.probe, dim);
    }
    log(`bench:embed: round ${round}, ${id}: torch ${t.imagesPerSecond.toFixed(1)}, onnxruntime ${o.imagesPerSecond.toFixed(1)} images/s (load ${os.loadavg()[0].toFixed(2)})`);
    loads.push(os.loadavg()[0]);
  }
}

const LABELS: Record<EmbedModelId, string> = { r50: 'IResNet-50 112x112', mbf: 'MobileFaceNet 112x112' };
const summary = {
  machine: machineInfo(),
  batch: flags.batch,
  rounds: flags.rounds,
  loadAverages: loads.map((l) => Number(l.toFixed(2))),
  models: Object.fromEntries(
    [...results].map(([id, r]) => [
      id,
      {
        label: LABELS[id],
        torchImagesPerSecond: median(r.torch),
        onnxruntimeImagesPerSecond: median(r.ort),
        torchToOnnxruntime: median(r.ratios),
        ratios: r.ratios,
        torch: r.torch,
        onnxruntime: r.ort,
        wasmImagesPerSecond: r.wasm ?? null,
        runs: r.runs,
        maxCosineDistance: r.agreement,
      },
    ]),
  ),
};
if (flags.json) {
  console.log(JSON.stringify(summary));
} else {
  console.log(`attfc bench:embed — ${JSON.stringify(summary.machine)}`);
  console.log(`batch ${flags.batch}, ${flags.rounds} alternating rounds (torch, onnxruntime; WASM in the first), 2 threads each; load averages ${summary.loadAverages.join(', ')}`);
  const rows = [...results].map(([id, r]) => [
    LABELS[id],
    `${median(r.torch).toFixed(1)} (${range(r.torch, 1)})`,
    `${median(r.ort).toFixed(1)} (${range(r.ort, 1)})`,
    `${median(r.ratios).toFixed(2)}x (${range(r.ratios, 2)})`,
    r.wasm === undefined ? '-' : r.wasm.toFixed(2),
  ]);
  console.log(table(rows, ['model (images/s)', 'attfc torch (range)', 'onnxruntime-node (range)', 'torch / onnxruntime (range)', 'attfc WASM']));
  for (const [id, r] of results) {
    console.log(`${LABELS[id]}: ${Object.entries(r.runs).map(([e, how]) => `${e}: ${how}`).join('; ')}`);
    console.log(`  largest cosine distance between engines' embeddings of the same images: ${Object.entries(r.agreement).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
  }
}
