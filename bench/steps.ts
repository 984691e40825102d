// npm run bench:steps [-- --models mbf112,mbf-demo,r18,r50] [--rounds 3] [--no-profile] [--op-by-op] [--pytorch-tuned] [--json]
// Training steps on backend torch against PyTorch 1.13 doing the same step on the same cores: MobileFaceNet
// at 112x112 batch 32, the demo's MobileFaceNet x0.5 at 32x32 batch 64, IResNet-18 at batch 8 and
// IResNet-50 at batch 32 (each with a 10k-class ArcFace full FC head, clipping and momentum SGD). Each
// round runs attfc's step and then PyTorch's, per model, each in its own process; a round's ratio is
// attfc's median step over PyTorch's, and the summary is the median ratio over the rounds with its
// range (this machine's speed moves between runs; ratios taken side by side do not). Then a per-kernel
// profile of one step of each: attfc's native graph timers next to torch.autograd.profiler's table.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { machineInfo, table } from './lib/timing.js';
import { parseOrExit, stepsChildFlags, stepsFlags, type StepModelId } from './lib/flags.js';
import { pytorchUnavailable, runPytorchReference } from './lib/pytorchReference.js';
import { STEP_MODELS } from './lib/stepModels.js';
import { torchAvailable } from '../src/engine/torch/index.js';

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);

if (args[0] === '--child') {
  const { runStepsChild } = await import('./lib/stepsChild.js');
  await runStepsChild(parseOrExit('bench:steps child', stepsChildFlags, args.slice(1)));
  process.exit(0);
}

const flags = parseOrExit('bench:steps', stepsFlags, args);
const log = (s: string) => process.stderr.write(s + '\n');
const torch = torchAvailable();
if (!torch.ok) {
  log(`bench:steps: backend torch: ${torch.reason}`);
  process.exit(1);
}
const noPytorch = pytorchUnavailable();
if (noPytorch) {
  log(`bench:steps: ${noPytorch}`);
  process.exit(1);
}

/** attfc's step in a child process: its JSON result. */
function attfc(model: StepModelId, extra: string[], env: Record<string, string> = {}): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', '--model', model, '--steps', String(STEP_MODELS[model].steps), ...extra], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    env: { ...process.env, ...env },
  });
  if (r.status !== 0) throw new Error(`bench:steps child (${model}) failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string);
}

const MEDIAN = /median step ([\d.]+) s/;
// the layout and allocator attfc's native graph uses, for the --pytorch-tuned column
const TUNED_ENV = { MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: String(2 ** 36) };

function pytorch(model: StepModelId, tuned: boolean): number {
  const [script, scriptArgs] = STEP_MODELS[model].pytorch;
  const extra = ['--threads', '2', '--steps', String(STEP_MODELS[model].steps), ...(tuned ? ['--channels-last'] : [])];
  return runPytorchReference(script, [...scriptArgs, ...extra], MEDIAN, tuned ? TUNED_ENV : {}).values[0];
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const range = (v: number[], d: number) => `${Math.min(...v).toFixed(d)}-${Math.max(...v).toFixed(d)}`;

interface ModelResult {
  attfc: number[];
  pytorch: number[];
  ratios: number[];
  opByOp: number[];
  pytorchTuned: number[];
}
const results = new Map<StepModelId, ModelResult>(flags.models.map((m) => [m, { attfc: [], pytorch: [], ratios: [], opByOp: [], pytorchTuned: [] }]));
const loads: number[] = [os.loadavg()[0]];
for (let round = 1; round <= flags.rounds; round++) {
  for (const model of flags.models) {
    const res = results.get(model) as ModelResult;
    log(`bench:steps: round ${round}/${flags.rounds}, ${STEP_MODELS[model].label}: attfc ...`);
    const ours = attfc(model, []).median as number;
    log(`bench:steps: round ${round}/${flags.rounds}, ${STEP_MODELS[model].label}: PyTorch ...`);
    const theirs = pytorch(model, false);
    res.attfc.push(ours);
    res.pytorch.push(theirs);
    res.ratios.push(ours / theirs);
    if (flags.opByOp) res.opByOp.push(attfc(model, [], { ATTFC_TORCH_GRAPH: '0' }).median as number);
    if (flags.pytorchTuned) res.pytorchTuned.push(pytorch(model, true));
    log(`bench:steps:   attfc ${ours.toFixed(3)} s, PyTorch ${theirs.toFixed(3)} s: ${(ours / theirs).toFixed(2)}x (load ${os.loadavg()[0].toFixed(2)})`);
    loads.push(os.loadavg()[0]);
  }
}

type Profile = { stepMs: number; kernelCalls: number; graph: Record<string, [number, number]>; kernels: Record<string, [number, number]> };
const profiles = new Map<StepModelId, { attfc: Profile; pytorch: string }>();
if (flags.profile) {
  for (const model of flags.models) {
    log(`bench:steps: profiles, ${STEP_MODELS[model].label} ...`);
    const ours = attfc(model, ['--profile']) as unknown as Profile;
    const [script, scriptArgs] = STEP_MODELS[model].pytorch;
    const ref = runPytorchReference(script, [...scriptArgs, '--threads', '2', '--steps', '2', '--profile'], MEDIAN);
    const lines = ref.stdout.trim().split('\n');
    const start = lines.findIndex((l) => /^-{10,}/.test(l));
    profiles.set(model, { attfc: ours, pytorch: lines.slice(start, -1).join('\n') });
  }
}

const summary = {
  machine: machineInfo(),
  loadAverages: loads.map((l) => Number(l.toFixed(2))),
  rounds: flags.rounds,
  models: Object.fromEntries(
    [...results].map(([m, r]) => [
      m,
      {
        label: STEP_MODELS[m].label,
        attfcStepSeconds: median(r.attfc),
        pytorchStepSeconds: median(r.pytorch),
        ratio: median(r.ratios),
        ratios: r.ratios,
        attfc: r.attfc,
        pytorch: r.pytorch,
        ...(r.opByOp.length ? { opByOpStepSeconds: median(r.opByOp), opByOp: r.opByOp } : {}),
        ...(r.pytorchTuned.length ? { pytorchTunedStepSeconds: median(r.pytorchTuned), pytorchTuned: r.pytorchTuned } : {}),
      },
    ]),
  ),
};

if (flags.json) {
  console.log(JSON.stringify({ ...summary, profiles: Object.fromEntries(profiles) }));
} else {
  console.log(`attfc bench:steps — ${JSON.stringify(summary.machine)}`);
  console.log(
    `${flags.rounds} alternating rounds: attfc on backend torch (2 threads) then PyTorch 1.13 (2 threads, NCHW as its model code runs, OMP_WAIT_POLICY=PASSIVE as attfc), each model's step in its own process; load averages ${summary.loadAverages.join(', ')}`,
  );
  const rows = [...results].map(([m, r]) => [
    STEP_MODELS[m].label,
    `${median(r.attfc).toFixed(3)} (${range(r.attfc, 3)})`,
    `${median(r.pytorch).toFixed(3)} (${range(r.pytorch, 3)})`,
    `${median(r.ratios).toFixed(2)}x (${range(r.ratios, 2)})`,
    ...(flags.opByOp ? [`${median(r.opByOp).toFixed(3)} (${range(r.opByOp, 3)})`] : []),
    ...(flags.pytorchTuned ? [`${median(r.pytorchTuned).toFixed(3)} (${range(r.pytorchTuned, 3)})`] : []),
  ]);
  console.log(
    table(rows, [
      'step (synthetic input, 10k-class ArcFace FC)',
      'attfc s (range)',
      'PyTorch s (range)',
      'attfc / PyTorch (range)',
      ...(flags.opByOp ? ['attfc op-by-op s'] : []),
      ...(flags.pytorchTuned ? ['PyTorch channels-last, no mmap s'] : []),
    ]),
  );
  for (const [m, p] of profiles) {
    console.log('');
    console.log(`Profile of one ${STEP_MODELS[m].label} step on attfc (backend torch): ${p.attfc.stepMs.toFixed(0)} ms under tf.profile, ${p.attfc.kernelCalls} tfjs kernel calls`);
    const graph = Object.entries(p.attfc.graph).sort((a, b) => b[1][0] - a[1][0]);
    console.log('  inside the native graph (forward + backward), ms and calls:');
    for (const [k, [ms, n]] of graph) console.log(`    ${k.padEnd(40)} ${ms.toFixed(1).padStart(8)}  x${n}`);
    const kernels = Object.entries(p.attfc.kernels).sort((a, b) => b[1][0] - a[1][0]).slice(0, 8);
    console.log('  tfjs kernels (the graph is AttfcGraphForward/Backward), ms and calls, top 8:');
    for (const [k, [ms, n]] of kernels) console.log(`    ${k.padEnd(40)} ${ms.toFixed(1).padStart(8)}  x${n}`);
    console.log(`PyTorch's torch.autograd.profiler of the same step:`);
    console.log(p.pytorch);
  }
}
