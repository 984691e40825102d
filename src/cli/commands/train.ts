// `attfc train`: flags and/or a JSON/YAML config file -> validated config -> training with progress.
import { Command, Option } from 'commander';
import { readConfigFile, parseTrainConfig, BACKBONES, HEADS, RESUME_MUTABLE_KEYS, type TrainConfig } from '../../train/config.js';
import { AttfcError } from '../../errors.js';
import { withInitArchitecture } from '../../train/initFrom.js';
import { SYNTH_SPEC_SYNTAX } from '../../data/synthetic/spec.js';

/** CLI flag -> config key, with help text; numbers stay strings when malformed so the schema names them. */
const FLAGS: { flag: string; key: keyof TrainConfig; help: string; kind: 'string' | 'number' | 'list' | 'boolean'; choices?: readonly string[] }[] = [
  {
    flag: '--data <path>',
    key: 'data',
    help:
      'training data: insightface folder (train.rec, train.idx, property), a .rec file, an image folder root/<identity>/<image>, ' +
      `or SYNTHETIC faces rendered on demand as the sampler draws them: ${SYNTH_SPEC_SYNTAX} ` +
      '(the images `attfc synth` writes for the same options, default size 112; the held-out verification pairs go to <output>/synth_val.bin and are verified like a --verify set)',
    kind: 'string',
  },
  { flag: '--output <dir>', key: 'output', help: 'output folder for metrics.jsonl, checkpoints/ and model/ (default runs/train)', kind: 'string' },
  { flag: '--backbone <name>', key: 'backbone', help: 'backbone (default r50)', kind: 'string', choices: BACKBONES },
  { flag: '--input-size <px>', key: 'inputSize', help: 'square input side; images are resized to it (default 112)', kind: 'number' },
  { flag: '--width <multiplier>', key: 'widthMultiplier', help: 'channel width multiplier for CPU-sized models (default 1)', kind: 'number' },
  { flag: '--embedding-size <d>', key: 'embeddingSize', help: 'embedding dimension (default 512)', kind: 'number' },
  { flag: '--mbf-scale <s>', key: 'mbfScale', help: "MobileFaceNet: insightface's width scale, stem/stage channels 64*s and 128*s (default 2 for mbf, 4 for mbf_large)", kind: 'number' },
  { flag: '--init-from <path>', key: 'initFrom', help: 'start from these weights: an insightface-style .onnx file (see attfc import) or an attfc model folder; sets backbone, input size, width, embedding size', kind: 'string' },
  { flag: '--dropout <p>', key: 'dropout', help: 'dropout before the embedding layer (IResNet; default 0)', kind: 'number' },
  { flag: '--head <kind>', key: 'head', help: 'classification head: attfc, fc (full FC) or pfc (Partial FC) (default attfc)', kind: 'string', choices: HEADS },
  { flag: '--sample-rate <r>', key: 'sampleRate', help: 'Partial FC: share of classes per step, positives always included (default 0.1)', kind: 'number' },
  { flag: '--sample-num <K>', key: 'sampleNum', help: 'AttFC: images per identity per sample, 1 query + K-1 keys; 2 = DCQ (default 3)', kind: 'number' },
  { flag: '--queue-ratio <r>', key: 'queueRatio', help: 'AttFC: DCC size as a share of the identities, rounded down to a multiple of the batch (default 0.3)', kind: 'number' },
  { flag: '--queue-size <S>', key: 'queueSize', help: 'AttFC: DCC size in slots, a multiple of the batch size (overrides --queue-ratio)', kind: 'number' },
  { flag: '--attention <mode>', key: 'attention', help: 'AttFC: key weighting: softmax (default), mean, or single (first key only)', kind: 'string', choices: ['softmax', 'mean', 'single'] },
  { flag: '--temperature <T>', key: 'temperature', help: 'AttFC: attention softmax temperature (default 1)', kind: 'number' },
  { flag: '--no-masking', key: 'masking', help: 'AttFC: keep same-identity DCC slots as negatives (ablation)', kind: 'boolean' },
  { flag: '--ema-momentum <m>', key: 'emaMomentum', help: 'AttFC: class-encoder EMA momentum (default 0.999)', kind: 'number' },
  { flag: '--margin <kind>', key: 'margin', help: 'margin loss: arcface (default), cosface, or combined (uses --margin-m1/m2/m3)', kind: 'string', choices: ['arcface', 'cosface', 'combined'] },
  { flag: '--margin-s <s>', key: 'marginS', help: 'logit scale (default 64)', kind: 'number' },
  { flag: '--margin-m1 <m1>', key: 'marginM1', help: 'combined margin m1 (default 1)', kind: 'number' },
  { flag: '--margin-m2 <m2>', key: 'marginM2', help: 'additive angular margin (default 0.5)', kind: 'number' },
  { flag: '--margin-m3 <m3>', key: 'marginM3', help: 'additive cosine margin (cosface default 0.4)', kind: 'number' },
  { flag: '--margin-gradient <mode>', key: 'marginGradient', help: 'straight-through (reference, default) or exact', kind: 'string', choices: ['straight-through', 'exact'] },
  { flag: '--batch-size <B>', key: 'batchSize', help: 'batch size (default 128)', kind: 'number' },
  { flag: '--epochs <n>', key: 'epochs', help: 'epochs (default 5)', kind: 'number' },
  { flag: '--steps <n>', key: 'steps', help: 'total steps (overrides --epochs)', kind: 'number' },
  { flag: '--lr <lr>', key: 'lr', help: 'SGD learning rate (default 0.1)', kind: 'number' },
  { flag: '--momentum <mu>', key: 'momentum', help: 'SGD momentum (default 0.9)', kind: 'number' },
  { flag: '--weight-decay <wd>', key: 'weightDecay', help: 'weight decay, added to the gradient before momentum (default 5e-4)', kind: 'number' },
  { flag: '--schedule <kind>', key: 'schedule', help: 'cosine (per iteration, default) or poly', kind: 'string', choices: ['cosine', 'poly'] },
  { flag: '--warmup-steps <n>', key: 'warmupSteps', help: 'linear warm-up steps (default 0)', kind: 'number' },
  { flag: '--poly-power <p>', key: 'polyPower', help: 'exponent of the poly schedule (default 2)', kind: 'number' },
  { flag: '--clip-norm <n>', key: 'clipNorm', help: 'clip the backbone gradient global norm (default 5)', kind: 'number' },
  { flag: '--seed <n>', key: 'seed', help: 'seed for initialisation, sampling and augmentation (default 0)', kind: 'number' },
  { flag: '--verify <bins...>', key: 'verify', help: 'verification .bin sets (lfw.bin cfp_fp.bin ...) evaluated during and after training', kind: 'list' },
  { flag: '--verify-every <n>', key: 'verifyEvery', help: 'verify every n steps (0 = only at the end; default 2000)', kind: 'number' },
  { flag: '--log-every <n>', key: 'logEvery', help: 'write a metrics.jsonl line every n steps (default 10)', kind: 'number' },
  { flag: '--checkpoint-every <n>', key: 'checkpointEvery', help: 'checkpoint every n steps (0 = only at the end; default 1000)', kind: 'number' },
  { flag: '--keep-checkpoints <k>', key: 'keepCheckpoints', help: 'checkpoints kept (default 3)', kind: 'number' },
  { flag: '--parallel <mode>', key: 'parallel', help: 'WASM: data (one single-thread replica per core, each on part of the batch), threads (one multi-threaded instance) or auto (default: data when possible)', kind: 'string', choices: ['auto', 'data', 'threads'] },
  { flag: '--replicas <n>', key: 'replicas', help: "replicas for --parallel data (default: the number of cores)", kind: 'number' },
  { flag: '--workers <n>', key: 'workers', help: 'data decoding threads (default: all cores)', kind: 'number' },
  { flag: '--prefetch <n>', key: 'prefetch', help: 'batches decoded ahead (default 3)', kind: 'number' },
  { flag: '--max-bad-share <r>', key: 'maxBadShare', help: 'stop (with a checkpoint) if more than this share of the images seen cannot be used: undecodable, or labelled otherwise than their identity record; each counted once (default 0.01)', kind: 'number' },
  { flag: '--sync-bn', key: 'syncBn', help: 'distributed runs: batch-norm statistics over the global batch (SyncBatchNorm); N ranks then train exactly as one process (default: each rank over its own rows, as DDP)', kind: 'boolean' },
  { flag: '--shard-head', key: 'shardHead', help: "distributed runs: split the head's class table (fc, pfc) or DCC (attfc) across the ranks; memory per rank falls by the world size, results equal the replicated head's", kind: 'boolean' },
  { flag: '--dist-timeout <s>', key: 'distTimeout', help: 'distributed runs: seconds to wait for the other ranks (rendezvous and every collective) before stopping (default 600)', kind: 'number' },
  { flag: '--export <format>', key: 'export', help: 'model written at the end: tfjs (default: model/ with model.json + weights.bin) or onnx (model/ plus model/model.onnx)', kind: 'string', choices: ['tfjs', 'onnx'] },
  { flag: '--no-export', key: 'export', help: 'do not export the model at the end', kind: 'boolean' },
];

function optionName(flag: string): string {
  const long = flag.split(' ')[0].replace(/^--(no-)?/, '');
  return long.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
}

function asNumber(v: string): number | string {
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) ? n : v;
}

/** The keys set by the config file and by flags given on the command line (flags win); no defaults. */
function givenConfig(cmd: Command): Record<string, unknown> {
  const o = cmd.opts() as Record<string, unknown>;
  const raw: Record<string, unknown> = o.config ? readConfigFile(String(o.config)) : {};
  for (const f of FLAGS) {
    const name = optionName(f.flag);
    if (cmd.getOptionValueSource(name) !== 'cli') continue;
    const v = o[name];
    raw[f.key] = f.kind === 'number' ? asNumber(String(v)) : v;
  }
  return raw;
}

/** Merges defaults <- config file <- flags given on the command line, then validates. */
export function resolveTrainConfig(cmd: Command): TrainConfig {
  const o = cmd.opts() as Record<string, unknown>;
  const raw = givenConfig(cmd);
  if (raw.data === undefined) throw new AttfcError('train: no training data: pass --data <path> or set "data" in --config (try `attfc synth` for a synthetic set, or --data synth:1000x8@32 to render one on demand)');
  return parseTrainConfig(withInitArchitecture(raw), o.config ? `config ${o.config}` : 'train');
}

/** The flags of the keys a resume may change, for --help (from RESUME_MUTABLE_KEYS, so they cannot drift). */
function resumableFlags(): string {
  return RESUME_MUTABLE_KEYS.map((k) => FLAGS.find((f) => f.key === k)?.flag.split(' ')[0] ?? k).join(', ');
}

export function registerTrainCommand(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a face-recognition backbone with the AttFC head (or a full-FC / Partial-FC / DCQ-style baseline)')
    .option('--config <file>', 'JSON or YAML config; flags given on the command line override it')
    .option('--print-config', 'print the resolved config as JSON and exit')
    .option('--resume <dir>', `continue exactly from a checkpoint (a ckpt-* folder or a run folder: its newest checkpoint) with its saved config; flags may change only ${resumableFlags()}`)
    .option('--overwrite', 'replace the run a previous training left in --output (its config, metrics, checkpoints and model); without it a non-empty --output is refused')
    .option('--allow-data-change', 'with --resume: continue on a data set other than the one the checkpoint was trained on (refused otherwise)')
    .option('--dry-run', 'plan the run and stop: check the config, the data, the engine and the memory it needs (the heap refusal included), train and write nothing')
    .option('--auto-resume', 'continue the newest checkpoint in --output if there is one, else start the run there (one command for the first start and every restart: Kubernetes, SLURM requeues; torchrun restarts do this by themselves)')
    .option('--nproc <n>', 'start n ranks of a distributed run on this machine (like torchrun --nproc_per_node n; backend torch; each rank gets cores/n threads); --batch-size stays the global batch');
  for (const f of FLAGS) {
    const opt = new Option(f.flag, f.help);
    if (f.choices) opt.choices([...f.choices]);
    cmd.addOption(opt);
  }
  cmd.addHelpText(
    'after',
    `
Examples:
  attfc synth --identities 2000 --images-per-identity 10 --size 56 --out data/synth
  attfc train --data data/synth --backbone mbf --input-size 56 --batch-size 64 --steps 2000 --verify data/synth/synth_val.bin
  attfc train --data synth:100000x3@32 --backbone mbf --input-size 32 --steps 500   # 100k SYNTHETIC identities, rendered on demand
  attfc train --data /data/ms1m-retinaface-t1 --backbone r50 --batch-size 14 --verify /data/ms1m-retinaface-t1/lfw.bin
  attfc train --backend torch --data /data/ms1m-retinaface-t1 --backbone r50 --batch-size 128   # native backend: no 4 GiB heap
  attfc train --data data/synth --backbone r50 --batch-size 14 --dry-run   # will it fit? (checks, trains nothing)
  attfc train --resume runs/train            # continue the newest checkpoint exactly
  attfc train --resume runs/train --parallel threads --verify lfw.bin   # may change data/output paths, engine, logging
  attfc train --data data/synth --init-from w600k_r50.onnx --batch-size 14 --steps 500 --lr 0.01 --export onnx   # fine-tune an insightface model
  attfc train --data data/synth --backbone mbf --input-size 56 --output runs/train --overwrite   # replace the previous run in runs/train
  attfc --backend torch train --nproc 2 --data data/synth --backbone mbf --input-size 56 --batch-size 64 --sync-bn   # 2 ranks on this machine
  torchrun --no_python --nproc_per_node 2 -r 3 -t 3 node bin/attfc.js train --data data/synth --batch-size 64   # the same, launched by torchrun (docs/distributed.md)
Outputs in --output: config.json, environment.json, metrics.jsonl, checkpoints/ckpt-<step>/, model/ (model.json + weights).
One training at a time writes a run folder (a .lock file names it; a killed run's lock is reclaimed). A new run
refuses a folder that holds anything unless --overwrite; Ctrl-C or SIGTERM writes a checkpoint and exits 130 / 143.`,
  );
  cmd.action(async () => {
    const o = cmd.opts() as { printConfig?: boolean; resume?: string; overwrite?: boolean; allowDataChange?: boolean; dryRun?: boolean; nproc?: string; autoResume?: boolean };
    if (o.autoResume && o.resume) throw new AttfcError('--auto-resume with --resume: --auto-resume already continues the newest checkpoint of --output');
    if (o.autoResume && o.overwrite) throw new AttfcError('--auto-resume with --overwrite: one continues the run in --output, the other replaces it');
    if (o.nproc !== undefined) {
      const n = Number(o.nproc);
      if (!Number.isInteger(n) || n < 1) throw new AttfcError(`--nproc ${o.nproc}: expected a whole number >= 1`);
      if (n > 1 && !o.printConfig) {
        const { launchLocalRanks, withoutNproc } = await import('../rankLauncher.js');
        process.exitCode = await launchLocalRanks(n, withoutNproc(process.argv.slice(2)));
        return;
      }
    }
    if (o.resume && o.printConfig) throw new AttfcError('--print-config with --resume: the resumed run uses the checkpoint config; see <run>/config.json');
    if (o.allowDataChange && !o.resume) throw new AttfcError('--allow-data-change: only meaningful with --resume <run>');
    // With --resume only what the user gave: the trainer applies it to the checkpoint's config where a resume allows.
    const given = o.resume ? givenConfig(cmd) : undefined;
    const config = given ? (Object.keys(given).length ? given : null) : resolveTrainConfig(cmd);
    if (o.printConfig) {
      process.stdout.write(JSON.stringify(config, null, 2) + '\n');
      return;
    }
    const { runTrainingCli } = await import('../trainRunner.js');
    process.exitCode = await runTrainingCli(config, o.resume, { overwrite: o.overwrite, allowDataChange: o.allowDataChange, dryRun: o.dryRun, autoResume: o.autoResume });
  });
}
