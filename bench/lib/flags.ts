// The benchmark scripts' command lines, all parsed by commander: `--help` lists a script's flags, and an
// unknown or misspelled flag, a missing value or a bad one is refused with one line and exit code 2
// (a benchmark that silently ignored `--qiuck` would run for an hour with the wrong settings).
// Each script's parent flags and the flags of its child processes are defined here; the parsers
// throw CommanderError so tests can check them, and parseOrExit turns that into the exit.
import os from 'node:os';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DEFAULT_HEADS, parseHeadSpec, type HeadSpec } from './headSpecs.js';

function command(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: (s) => process.stdout.write(s) });
}

function parse(cmd: Command, argv: string[]): Command {
  return cmd.parse(argv, { from: 'user' });
}

/** Parses with `parser`; on a bad command line prints `name: <reason>` and exits 2 (0 after --help). */
export function parseOrExit<T>(name: string, parser: (argv: string[]) => T, argv: string[]): T {
  try {
    return parser(argv);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.code === 'commander.version') process.exit(0);
    process.stderr.write(`${name}: ${e.message.replace(/^error: /, '').replace(/\n+/g, ' ').trim()}\n`);
    process.exit(2);
  }
}

function wholeNumber(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number >= ${min}`);
    return n;
  };
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function list<T>(item: (s: string) => T) {
  return (v: string): T[] => {
    const items = v.split(',').map((s) => s.trim());
    if (items.some((s) => s === '')) throw new InvalidArgumentError('expected a comma-separated list without empty items');
    return items.map(item);
  };
}

function json(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    throw new InvalidArgumentError('expected JSON');
  }
}

/** "10000", "10k", "1M", "2059906" -> a whole number >= 2. */
export function parseCount(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(s.trim());
  const n = m ? Math.round(Number(m[1]) * (m[2] ? (m[2].toLowerCase() === 'k' ? 1e3 : 1e6) : 1)) : NaN;
  if (!(Number.isInteger(n) && n >= 2)) throw new InvalidArgumentError(`"${s}" is not an identity count (a whole number >= 2, e.g. 10000, 100k, 1M)`);
  return n;
}

function headSpec(s: string): HeadSpec {
  try {
    return parseHeadSpec(s);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message.replace(/^--heads: /, ''));
  }
}

// ---- bench:accuracy ----------------------------------------------------------------------------------

export interface AccuracyFlags {
  quick: boolean;
  json: boolean;
  verbose: boolean;
  /** Replace the protocol's seeds / steps when given. */
  seeds?: number[];
  steps?: number;
  parallel: number;
  /** false with --no-equal-time. */
  equalTime: boolean;
}

export function accuracyFlags(argv: string[]): AccuracyFlags {
  const cmd = command('bench:accuracy', 'head parity on synthetic faces: every head trained with the same data, backbone, recipe and seeds')
    .option('--quick', 'the short protocol (writes accuracy-quick.json)', false)
    .option('--json', 'print the summary as JSON', false)
    .option('--verbose', "show every run's training log", false)
    .option('--seeds <list>', 'comma-separated training seeds (default: the protocol’s)', list(wholeNumber(0)))
    .option('--steps <n>', 'training steps per run (default: the protocol’s)', wholeNumber(1))
    .option('--parallel <n>', 'runs side by side, one thread each', wholeNumber(1), 2)
    .option('--no-equal-time', 'skip the second comparison, where the faster heads get as many steps as fit in the time AttFC (softmax) took');
  return parse(cmd, argv).opts<AccuracyFlags>();
}

/** The child process of bench:accuracy and bench:train: `--job <json>`. */
export function jobFlags(argv: string[]): { job: unknown } {
  const cmd = command('bench child', 'one benchmark run in its own process (started by the benchmark script)').requiredOption('--job <json>', 'the run, as JSON', json);
  return parse(cmd, argv).opts<{ job: unknown }>();
}

// ---- bench:data --------------------------------------------------------------------------------------

export interface DataFlags {
  /** An insightface .rec folder; a small generated one when absent. */
  dataset?: string;
  json: boolean;
  consume?: number;
  workers: number;
  sizes: number[];
  batch: number;
  sampleNum: number;
  images: number;
  seconds: number;
}

export function dataFlags(argv: string[]): DataFlags {
  const cmd = command('bench:data', 'decode + augment throughput of the training data pipeline with 1 and N worker threads')
    .argument('[dataset]', 'an insightface .rec dataset folder (default: a generated one)')
    .option('--json', 'print the results as JSON', false)
    .option('--consume <img/s>', "the trainer's images/s: shows whether the pipeline keeps up", positiveNumber)
    .option('--workers <n>', 'the largest worker count measured', wholeNumber(1), os.cpus().length)
    .option('--sizes <list>', 'comma-separated input sizes', list(wholeNumber(1)), [112, 56])
    .option('--batch <n>', 'batch size', wholeNumber(1), 64)
    .option('--sample-num <k>', 'images per sample (1 query + K-1 keys)', wholeNumber(1), 3)
    .option('--images <n>', 'images in the generated dataset', wholeNumber(1), 2000)
    .option('--seconds <s>', 'minimum measuring time per configuration', positiveNumber, 4);
  parse(cmd, argv);
  return { ...cmd.opts<Omit<DataFlags, 'dataset'>>(), dataset: cmd.args[0] };
}

// ---- bench:engine ------------------------------------------------------------------------------------

/** Which engines a benchmark measures: 'all' = WASM, and torch when its addon is built. */
export type BenchBackends = 'all' | 'wasm' | 'torch';

function backendChoice(v: string): BenchBackends {
  if (v !== 'all' && v !== 'wasm' && v !== 'torch') throw new InvalidArgumentError('expected all, wasm or torch');
  return v;
}

export interface EngineFlags {
  json: boolean;
  quick: boolean;
  backend: BenchBackends;
}

export function engineFlags(argv: string[]): EngineFlags {
  const cmd = command(
    'bench:engine',
    'kernel GFLOPS and training steps: stock tfjs-wasm against the kernel pack, 1 against 2 threads, data-parallel workers, backend torch, and PyTorch on the same machine',
  )
    .option('--json', 'print the summary as JSON', false)
    .option('--quick', 'fewer repetitions', false)
    .option('--backend <all|wasm|torch>', 'engines to measure (all: WASM, and torch when its addon is built)', backendChoice, 'all');
  return parse(cmd, argv).opts<EngineFlags>();
}

export interface EngineChildFlags {
  backend: 'wasm' | 'torch';
  threads: number;
  pack: 'on' | 'off';
  quick: boolean;
  dataParallel: boolean;
}

export function engineChildFlags(argv: string[]): EngineChildFlags {
  const cmd = command('bench:engine child', 'one engine configuration in its own process (started by bench:engine)')
    .option('--backend <wasm|torch>', 'the engine', (v: string) => {
      if (v !== 'wasm' && v !== 'torch') throw new InvalidArgumentError('expected wasm or torch');
      return v;
    }, 'wasm')
    .option('--threads <n>', 'WASM threads or libtorch intra-op threads', wholeNumber(1), 2)
    .option('--pack <on|off>', "attfc's kernel pack (wasm)", (v: string) => {
      if (v !== 'on' && v !== 'off') throw new InvalidArgumentError('expected on or off');
      return v;
    }, 'on')
    .option('--quick', 'fewer repetitions', false)
    .option('--data-parallel', 'measure single-thread data-parallel workers', false);
  return parse(cmd, argv).opts<EngineChildFlags>();
}

// ---- bench:steps -------------------------------------------------------------------------------------

export const STEP_MODEL_IDS = ['mbf112', 'mbf-demo', 'r18', 'r50'] as const;
export type StepModelId = (typeof STEP_MODEL_IDS)[number];

function stepModel(v: string): StepModelId {
  if (!(STEP_MODEL_IDS as readonly string[]).includes(v)) throw new InvalidArgumentError(`"${v}" is not one of ${STEP_MODEL_IDS.join(', ')}`);
  return v as StepModelId;
}

export interface StepsFlags {
  json: boolean;
  models: StepModelId[];
  rounds: number;
  profile: boolean;
  opByOp: boolean;
  pytorchTuned: boolean;
}

export function stepsFlags(argv: string[]): StepsFlags {
  const cmd = command('bench:steps', "training steps of MobileFaceNet and IResNet on backend torch against PyTorch's same step, in alternating rounds, with per-kernel profiles of both")
    .option('--json', 'print the results as JSON', false)
    .option('--models <list>', `comma-separated models (${STEP_MODEL_IDS.join(', ')})`, list(stepModel), [...STEP_MODEL_IDS])
    .option('--rounds <n>', 'alternating rounds (attfc, then PyTorch, per model)', wholeNumber(1), 3)
    .option('--no-profile', 'skip the per-kernel profiles (one more step of each, after the rounds)')
    .option('--op-by-op', "also time attfc's op-by-op path (ATTFC_TORCH_GRAPH=0) in every round", false)
    .option('--pytorch-tuned', 'also time PyTorch with channels-last memory and glibc mmap off (the layout and allocator attfc uses) in every round', false);
  return parse(cmd, argv).opts<StepsFlags>();
}

export interface StepsChildFlags {
  model: StepModelId;
  steps: number;
  profile: boolean;
}

export function stepsChildFlags(argv: string[]): StepsChildFlags {
  const cmd = command('bench:steps child', 'one model on backend torch in its own process (started by bench:steps)')
    .requiredOption('--model <id>', 'the model', stepModel)
    .requiredOption('--steps <n>', 'measured steps after two warm-up steps', wholeNumber(1))
    .option('--profile', 'print a per-kernel profile of one more step instead of timing', false);
  return parse(cmd, argv).opts<StepsChildFlags>();
}

// ---- bench:embed -------------------------------------------------------------------------------------

export const EMBED_MODEL_IDS = ['r50', 'mbf'] as const;
export type EmbedModelId = (typeof EMBED_MODEL_IDS)[number];
export const EMBED_ENGINES = ['torch', 'wasm', 'onnxruntime'] as const;
export type EmbedEngine = (typeof EMBED_ENGINES)[number];

export interface EmbedFlags {
  json: boolean;
  models: EmbedModelId[];
  batch: number;
  rounds: number;
  seconds: number;
  wasm: boolean;
}

export function embedFlags(argv: string[]): EmbedFlags {
  const cmd = command('bench:embed', 'batch inference images/s of IResNet-50 and MobileFaceNet at 112x112: attfc on backend torch and on WASM against onnxruntime-node running the same model exported by `attfc export --onnx`, in alternating rounds')
    .option('--json', 'print the results as JSON', false)
    .option('--models <list>', `comma-separated models (${EMBED_MODEL_IDS.join(', ')})`, list((v: string) => {
      if (!(EMBED_MODEL_IDS as readonly string[]).includes(v)) throw new InvalidArgumentError(`"${v}" is not one of ${EMBED_MODEL_IDS.join(', ')}`);
      return v as EmbedModelId;
    }), [...EMBED_MODEL_IDS])
    .option('--batch <n>', 'images per forward pass', wholeNumber(1), 32)
    .option('--rounds <n>', 'alternating rounds of torch and onnxruntime (WASM runs in the first)', wholeNumber(1), 3)
    .option('--seconds <s>', 'minimum measuring time per engine and round (at least 3 batches)', positiveNumber, 8)
    .option('--no-wasm', 'skip WASM (slow at IResNet-50)');
  return parse(cmd, argv).opts<EmbedFlags>();
}

export interface EmbedChildFlags {
  engine: EmbedEngine;
  dir: string;
  batch: number;
  seconds: number;
}

export function embedChildFlags(argv: string[]): EmbedChildFlags {
  const cmd = command('bench:embed child', 'one engine on one model in its own process (started by bench:embed)')
    .requiredOption('--engine <name>', EMBED_ENGINES.join(', '), (v: string) => {
      if (!(EMBED_ENGINES as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected ${EMBED_ENGINES.join(', ')}`);
      return v as EmbedEngine;
    })
    .requiredOption('--dir <path>', 'the model folder (model.json, weights.bin, model.onnx)')
    .option('--batch <n>', 'images per forward pass', wholeNumber(1), 32)
    .option('--seconds <s>', 'minimum measuring time', positiveNumber, 8);
  return parse(cmd, argv).opts<EmbedChildFlags>();
}

// ---- bench:heads -------------------------------------------------------------------------------------

export interface HeadsFlags {
  json: boolean;
  quick: boolean;
  n?: number[];
  heads?: HeadSpec[];
  steps: number;
  plot?: string;
  timeout: number;
  threads?: number;
  /** GiB as given (passed on to the children). */
  deviceBudget: string;
  backend: 'wasm' | 'torch';
  /** false with --no-pytorch. */
  pytorch: boolean;
}

export function headsFlags(argv: string[]): HeadsFlags {
  const cmd = command('bench:heads', 'head-only training steps against the identity count, each configuration in its own process')
    .option('--json', 'print the results as JSON', false)
    .option('--quick', 'N = 10k and 100k only', false)
    .option('--n <list>', 'comma-separated identity counts (10000, 100k, 1M)', list(parseCount))
    .option('--heads <list>', `comma-separated heads (default ${DEFAULT_HEADS.join(',')})`, list(headSpec))
    .option('--steps <k>', 'measured steps per configuration', wholeNumber(1), 3)
    .option('--plot <path>', 'where the figure goes (.svg and .png)')
    .option('--timeout <s>', 'seconds per configuration', wholeNumber(1), 1200)
    .option('--threads <t>', 'WASM threads per child', wholeNumber(1))
    .option('--device-budget <GiB>', "AttFC's on-device chunk budget, in [0, 4)", (v: string) => {
      const n = Number(v);
      if (v.trim() === '' || !(n >= 0 && n < 4)) throw new InvalidArgumentError('expected GiB in [0, 4)');
      return v;
    }, '3.25')
    .option('--backend <wasm|torch>', 'the engine every configuration runs on', (v: string) => {
      if (v !== 'wasm' && v !== 'torch') throw new InvalidArgumentError('expected wasm or torch');
      return v;
    }, 'wasm')
    .option('--no-pytorch', "skip PyTorch's AttFC head step on the same machine (run after ours at each N where AttFC ran)");
  return parse(cmd, argv).opts<HeadsFlags>();
}

export interface HeadsChildFlags {
  head: HeadSpec;
  n: number;
  batch: number;
  dim: number;
  steps: number;
  seed: number;
  deviceBudget?: string;
  threads?: number;
  backend: 'wasm' | 'torch';
}

export function headsChildFlags(argv: string[]): HeadsChildFlags {
  const cmd = command('bench:heads child', 'one head configuration in its own process (started by bench:heads)')
    .requiredOption('--head <id>', 'the head', headSpec)
    .requiredOption('--n <N>', 'identities', parseCount)
    .option('--batch <B>', 'batch size', wholeNumber(1), 128)
    .option('--dim <D>', 'embedding size', wholeNumber(1), 512)
    .option('--steps <k>', 'measured steps', wholeNumber(1), 3)
    .option('--seed <s>', 'seed', wholeNumber(0), 2025)
    .option('--device-budget <GiB>', "AttFC's on-device chunk budget")
    .option('--threads <t>', 'WASM threads or libtorch intra-op threads', wholeNumber(1))
    .option('--backend <wasm|torch>', 'the engine', (v: string) => {
      if (v !== 'wasm' && v !== 'torch') throw new InvalidArgumentError('expected wasm or torch');
      return v;
    }, 'wasm');
  return parse(cmd, argv).opts<HeadsChildFlags>();
}

// ---- bench:train -------------------------------------------------------------------------------------

export interface TrainFlags {
  quick: boolean;
  json: boolean;
  verbose: boolean;
  steps?: number;
  warmup?: number;
  backend: BenchBackends;
}

export function trainFlags(argv: string[]): TrainFlags {
  const cmd = command('bench:train', 'training throughput of full steps for the AttFC, FullFC and PartialFC heads')
    .option('--quick', "the demo's size only, few steps", false)
    .option('--json', 'print the results as JSON', false)
    .option('--verbose', "show every run's training log", false)
    .option('--steps <n>', 'measured steps per configuration (default: per setup)', wholeNumber(1))
    .option('--warmup <n>', 'warm-up steps per configuration (default: per setup)', wholeNumber(1))
    .option('--backend <all|wasm|torch>', 'engines to measure (all: WASM, and torch when its addon is built)', backendChoice, 'all');
  return parse(cmd, argv).opts<TrainFlags>();
}

// ---- bench:scale -------------------------------------------------------------------------------------

export interface ScaleFlags {
  quick: boolean;
  json: boolean;
  verbose: boolean;
  /** Identities (default 2,059,906; --quick 100,000). */
  identities?: number;
  images: number;
  inputSize: number;
  batch: number;
  width: number;
  embeddingSize: number;
  /** Steps of the uninterrupted run (default 200; --quick 40); the checkpoint to resume from is at half. */
  steps?: number;
  /** Steps the resumed run takes before it stops (default 10; --quick 5). */
  resumeSteps?: number;
  head: 'attfc' | 'fc' | 'pfc';
  sampleRate: number;
  /** Verification pairs of held-out identities (the on-demand source's default: 1000). */
  verifyPairs: number;
  /** Unset: ATTFC_BACKEND, else torch when its addon is built, else wasm. */
  backend?: 'wasm' | 'torch';
  output?: string;
}

export function scaleFlags(argv: string[]): ScaleFlags {
  const cmd = command(
    'bench:scale',
    'end-to-end training at WebFace42M\'s 2,059,906 identities on SYNTHETIC faces rendered on demand: MobileFaceNet, AttFC (or --head fc / pfc), step time by part, memory, checkpoint size and write time, and an exact resume from a mid-run checkpoint',
  )
    .option('--quick', '100,000 identities, 40 steps (resume from step 20, 5 steps)', false)
    .option('--json', 'print one JSON object', false)
    .option('--verbose', "show the runs' training logs", false)
    .option('--identities <n>', 'identities (default 2,059,906; 100k, 1M and the like are accepted)', parseCount)
    .option('--images <k>', 'images per identity', wholeNumber(1), 3)
    .option('--input-size <px>', 'input side, 32 or 48', (v: string) => {
      if (v !== '32' && v !== '48') throw new InvalidArgumentError('expected 32 or 48');
      return Number(v);
    }, 32)
    .option('--batch <B>', 'batch size', wholeNumber(2), 128)
    .option('--width <m>', 'MobileFaceNet width multiplier', positiveNumber, 1)
    .option('--embedding-size <d>', 'embedding size', wholeNumber(1), 512)
    .option('--steps <n>', 'steps of the uninterrupted run; the resume starts from its checkpoint at half (default 200; --quick 40)', wholeNumber(2))
    .option('--resume-steps <n>', 'steps the resumed run takes and compares (default 10; --quick 5)', wholeNumber(1))
    .option('--head <kind>', 'attfc (DCC ratio 0.3), fc or pfc', (v: string) => {
      if (v !== 'attfc' && v !== 'fc' && v !== 'pfc') throw new InvalidArgumentError('expected attfc, fc or pfc');
      return v;
    }, 'attfc')
    .option('--sample-rate <r>', 'Partial FC sample rate', positiveNumber, 0.1)
    .option('--verify-pairs <n>', 'verification pairs of held-out identities, written to the run folder and verified at the end', wholeNumber(0), 1000)
    .option('--backend <wasm|torch>', 'the engine (default: ATTFC_BACKEND, else torch when its addon is built, else wasm)', (v: string) => {
      if (v !== 'wasm' && v !== 'torch') throw new InvalidArgumentError('expected wasm or torch');
      return v;
    })
    .option('--output <dir>', "the runs' folders (default .cache/bench/scale-<head>; replaced on every run)");
  const o = parse(cmd, argv).opts<ScaleFlags>();
  if (o.steps !== undefined && o.resumeSteps !== undefined && o.resumeSteps > o.steps - Math.floor(o.steps / 2))
    throw new CommanderError(1, 'bench.resumeSteps', `--resume-steps ${o.resumeSteps} runs past --steps ${o.steps} from the checkpoint at step ${Math.floor(o.steps / 2)}`);
  return o;
}

export interface DistributedFlags {
  quick: boolean;
  json: boolean;
  verbose: boolean;
  /** Allreduce sizes in floats. */
  sizes: number[];
  iters: number;
  /** Steps of each demo-model run (the first logging window is warm-up). */
  steps?: number;
  /** Steps of each IResNet-18 run. */
  r18Steps?: number;
  skipR18: boolean;
  output?: string;
}

export function distributedFlags(argv: string[]): DistributedFlags {
  const cmd = command(
    'bench:distributed',
    "distributed training on c10d: attfc's gradient-bucket allreduce against PyTorch's torch.distributed Gloo allreduce (same sizes, same run), and training throughput of the demo's model and IResNet-18 112 as 1 process x 2 threads against 2 ranks x 1 thread, with where the time goes",
  )
    .option('--quick', 'fewer steps and sizes (a smoke run)', false)
    .option('--json', 'print one JSON line', false)
    .option('--verbose', "show the runs' logs", false)
    .option('--sizes <list>', 'allreduce sizes in floats (comma-separated; 1M, 24M accepted)', list(parseCount), [1_000_000, 6_000_000, 24_000_000])
    .option('--iters <n>', 'timed allreduces per size', wholeNumber(1), 7)
    .option('--steps <n>', "steps of each demo-model run, 10 per logging window, the first window is warm-up (default 80; --quick 30)", wholeNumber(20))
    .option('--r18-steps <n>', 'steps of each IResNet-18 run, 4 per window, the first is warm-up (default 12; --quick 8)', wholeNumber(8))
    .option('--skip-r18', 'leave out the IResNet-18 runs', false)
    .option('--output <dir>', "the runs' folders (default .cache/bench/distributed; replaced on every run)");
  return parse(cmd, argv).opts<DistributedFlags>();
}
