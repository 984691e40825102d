// The training configuration: one schema for the config file, the CLI flags and the library API.
// A bad value is reported as one line naming the key, the value and what is allowed.
import { z } from 'zod';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { AttfcError } from '../errors.js';

export const HEADS = ['attfc', 'fc', 'pfc'] as const;
export const BACKBONES = ['r18', 'r34', 'r50', 'r100', 'r200', 'mbf', 'mbf_large'] as const;

const positiveInt = z.number().int().positive();

export const TrainConfigSchema = z
  .object({
    /** Training data: insightface .rec folder (train.rec/train.idx/property), a .rec file, or an image folder. */
    data: z.string().min(1),
    /** Output folder: metrics, checkpoints, exported model. */
    output: z.string().min(1).default('runs/train'),
    backbone: z.enum(BACKBONES).default('r50'),
    inputSize: z.number().int().min(16).max(224).default(112),
    widthMultiplier: z.number().positive().max(4).default(1),
    embeddingSize: positiveInt.default(512),
    dropout: z.number().min(0).max(0.9).default(0),
    /** MobileFaceNet: insightface's width `scale` (default: 2 for mbf, 4 for mbf_large); set by imported models. */
    mbfScale: z.number().positive().max(8).optional(),
    /**
     * Start f_q (and AttFC's f_k) from these weights: an insightface-style .onnx file or an attfc model
     * folder. It fixes backbone, inputSize, widthMultiplier, embeddingSize and mbfScale.
     */
    initFrom: z.string().min(1).optional(),

    head: z.enum(HEADS).default('attfc'),
    /** Partial FC: share of classes sampled per step (all positives are always included). */
    sampleRate: z.number().gt(0).max(1).default(0.1),
    /** AttFC: images per identity per sample (1 query + K-1 keys); 2 = DCQ. */
    sampleNum: z.number().int().min(2).max(16).default(3),
    /** AttFC: DCC size as a share of the identities (rounded down to a multiple of the batch size)... */
    queueRatio: z.number().gt(0).max(1).default(0.3),
    /** ...or as an absolute number of slots (a multiple of the batch size). */
    queueSize: positiveInt.optional(),
    attention: z.enum(['softmax', 'mean', 'single']).default('softmax'),
    temperature: z.number().positive().default(1),
    masking: z.boolean().default(true),
    emaMomentum: z.number().min(0).max(1).default(0.999),

    margin: z.enum(['arcface', 'cosface', 'combined']).default('arcface'),
    marginS: z.number().positive().default(64),
    marginM1: z.number().default(1),
    marginM2: z.number().default(0.5),
    /** Additive cosine margin; unset means the preset's (cosface 0.4, combined 0), an explicit 0 is kept. */
    marginM3: z.number().optional(),
    marginGradient: z.enum(['straight-through', 'exact']).default('straight-through'),

    batchSize: positiveInt.default(128),
    epochs: z.number().positive().default(5),
    /** Total steps; overrides epochs when set. */
    steps: positiveInt.optional(),
    lr: z.number().positive().default(0.1),
    momentum: z.number().min(0).max(1).default(0.9),
    weightDecay: z.number().min(0).default(5e-4),
    schedule: z.enum(['cosine', 'poly']).default('cosine'),
    warmupSteps: z.number().int().min(0).default(0),
    polyPower: z.number().positive().default(2),
    clipNorm: z.number().positive().default(5),

    seed: z.number().int().min(0).default(0),
    /** Verification .bin sets evaluated during training and at the end. */
    verify: z.array(z.string()).default([]),
    verifyEvery: z.number().int().min(0).default(2000),
    logEvery: positiveInt.default(10),
    checkpointEvery: z.number().int().min(0).default(1000),
    keepCheckpoints: positiveInt.default(3),
    /**
     * How the CPU cores share the work on the WASM backend: 'data' runs one single-thread WASM replica per
     * core, each on its share of the batch (measured faster than one multi-threaded instance); 'threads'
     * runs one multi-threaded instance; 'auto' picks 'data' when the trainer chooses the backend itself,
     * the backend is WASM, there are at least 2 cores and every replica gets at least 2 rows.
     */
    parallel: z.enum(['auto', 'data', 'threads']).default('auto'),
    /** Replicas in 'data' mode (default: the number of cores). */
    replicas: z.number().int().min(2).max(64).optional(),
    /** Data loading worker threads (default: all cores; in a distributed run, the cores per local rank). */
    workers: positiveInt.optional(),
    prefetch: positiveInt.default(3),
    /** Stop (with a checkpoint) when more than this share of the distinct images seen cannot be used. */
    maxBadShare: z.number().min(0).max(1).default(0.01),
    /**
     * Export the trained f_q at the end: true or 'tfjs' writes the TensorFlow.js model folder, 'onnx'
     * also writes model.onnx into it, false nothing.
     */
    export: z.union([z.boolean(), z.enum(['tfjs', 'onnx'])]).default(true),

    /**
     * Distributed runs (several processes: torchrun, `attfc train --nproc`): batch-norm statistics over the
     * global batch (PyTorch's SyncBatchNorm) instead of each rank's rows; N ranks then train as one process.
     */
    syncBn: z.boolean().default(false),
    /**
     * Distributed runs: split the head's class table (FC, Partial FC) or DCC (AttFC) across the ranks
     * (model parallel, as arcface_torch's PartialFC_V2); the result equals the replicated head's to rounding.
     */
    shardHead: z.boolean().default(false),
    /** Distributed runs: seconds a rank waits for the others (rendezvous and every collective) before giving up. */
    distTimeout: z.number().positive().default(600),
  })
  .strict();

export type TrainConfig = z.output<typeof TrainConfigSchema>;
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;

/** Preset margins (s, m1, m2, m3); 'combined' uses the marginM* values as given. */
export function marginOptions(c: TrainConfig): { s: number; m1: number; m2: number; m3: number; gradient: 'straight-through' | 'exact' } {
  if (c.margin === 'arcface') return { s: c.marginS, m1: 1, m2: c.marginM2, m3: 0, gradient: c.marginGradient };
  if (c.margin === 'cosface') return { s: c.marginS, m1: 1, m2: 0, m3: c.marginM3 ?? 0.4, gradient: c.marginGradient };
  return { s: c.marginS, m1: c.marginM1, m2: c.marginM2, m3: c.marginM3 ?? 0, gradient: c.marginGradient };
}

function describeAllowed(issue: z.core.$ZodIssue): string {
  const i = issue as z.core.$ZodIssue & { values?: unknown[]; expected?: string; minimum?: number; maximum?: number; inclusive?: boolean; keys?: string[]; origin?: string };
  if (i.code === 'invalid_value' && i.values) return `one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (i.code === 'invalid_type') return i.expected === 'int' ? 'a whole number' : `a ${i.expected}`;
  if (i.code === 'too_small') return i.origin === 'string' ? 'a non-empty string' : `a number ${i.inclusive === false ? '>' : '>='} ${i.minimum}`;
  if (i.code === 'too_big') return `a number ${i.inclusive === false ? '<' : '<='} ${i.maximum}`;
  if (i.code === 'unrecognized_keys') return `no such key (known keys: ${Object.keys(TrainConfigSchema.shape).join(', ')})`;
  return i.message;
}

/** Validates a raw config; throws AttfcError with one line: `config <source>: <key> = <value>: expected <allowed>`. */
export function parseTrainConfig(raw: unknown, source = 'config'): TrainConfig {
  const r = TrainConfigSchema.safeParse(raw);
  if (r.success) {
    const c = r.data;
    if (c.head === 'attfc' && c.queueSize !== undefined && c.queueSize % c.batchSize !== 0)
      throw new AttfcError(`${source}: queueSize = ${c.queueSize}: expected a multiple of batchSize (${c.batchSize})`);
    return c;
  }
  const issue = r.error.issues[0];
  const keys = issue.code === 'unrecognized_keys' ? (issue as { keys: string[] }).keys : [];
  const key = keys.length ? keys.join(', ') : issue.path.join('.') || '(root)';
  let value: unknown = raw;
  for (const p of issue.path) value = (value as Record<PropertyKey, unknown>)?.[p as PropertyKey];
  const shown = keys.length ? '' : ` = ${JSON.stringify(value)}`;
  throw new AttfcError(`${source}: ${key}${shown}: expected ${describeAllowed(issue)}`);
}

/** Reads a JSON or YAML config file (by extension; YAML is a superset of JSON). */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AttfcError(`config ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const v = YAML.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('the top level must be a mapping of keys to values');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new AttfcError(`config ${path}: ${(e as Error).message.split('\n')[0].replace(/:\s*$/, '')}`);
  }
}

/**
 * Keys a resumed run may change: where the data and outputs live, how the work is spread over the
 * cores and processes (the number of processes, like --replicas, is not part of the configuration:
 * a resume may run on another world size), and what is logged, verified, checkpointed and exported. Everything else defines the training
 * itself (model, head, recipe, schedule length, seed), which an exact resume must keep.
 */
export const RESUME_MUTABLE_KEYS = [
  'data',
  'output',
  'parallel',
  'replicas',
  'workers',
  'prefetch',
  'maxBadShare',
  'verify',
  'verifyEvery',
  'logEvery',
  'checkpointEvery',
  'keepCheckpoints',
  'export',
  'shardHead',
  'distTimeout',
] as const satisfies readonly (keyof TrainConfig)[];

/**
 * The configuration of a resumed run: the checkpoint's, with `overrides` applied where allowed. An
 * override of any other key that differs from the saved value is refused with one line naming it.
 */
export function resumedTrainConfig(saved: unknown, overrides: Partial<TrainConfigInput> | null, source: string): TrainConfig {
  const base = parseTrainConfig(saved, `${source} config`);
  if (!overrides) return base;
  const mutable = new Set<string>(RESUME_MUTABLE_KEYS);
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const current = (base as Record<string, unknown>)[key];
    if (JSON.stringify(value) === JSON.stringify(current)) continue;
    if (!mutable.has(key))
      throw new AttfcError(
        `--resume continues ${source} with its own configuration: ${key} cannot change (saved ${JSON.stringify(current)}, given ${JSON.stringify(value)}); ` +
          `a resumed run may change only ${RESUME_MUTABLE_KEYS.join(', ')}`,
      );
    merged[key] = value;
  }
  return parseTrainConfig(merged, `${source} config with the given overrides`);
}
