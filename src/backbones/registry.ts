// Backbones by name: option defaults and validation, the architecture spec, construction and the
// allocation-free parameter count.
import { AttfcError } from '../errors.js';
import { GraphBackbone } from './graphBackbone.js';
import { IRESNET_LAYERS, iresnetSpec, type IResNetName } from './iresnet.js';
import { mobileFaceNetSpec, type MobileFaceNetName } from './mobilefacenet.js';
import { countParams, type ArchitectureSpec } from './spec.js';
import type { Backbone, BackboneOptions, ResolvedBackboneOptions } from './types.js';

// `satisfies` keeps this list and the architecture tables in step at compile time.
export const BACKBONE_NAMES = ['r18', 'r34', 'r50', 'r100', 'r200', 'mbf', 'mbf_large'] as const satisfies readonly (IResNetName | MobileFaceNetName)[];
export type BackboneName = (typeof BACKBONE_NAMES)[number];

/** Smallest input side every backbone still maps to a >= 1x1 final feature map with 4 stride-2 stages. */
export const MIN_INPUT_SIZE = 16;

export const DEFAULT_BACKBONE_OPTIONS: ResolvedBackboneOptions = {
  inputSize: 112,
  widthMultiplier: 1,
  embeddingSize: 512,
  dropout: 0,
  seed: 0,
};

export function isBackboneName(name: string): name is BackboneName {
  return (BACKBONE_NAMES as readonly string[]).includes(name);
}

function checkName(name: string): BackboneName {
  if (!isBackboneName(name)) throw new AttfcError(`backbone: unknown name "${name}"; expected one of ${BACKBONE_NAMES.join(', ')}`);
  return name;
}

/** Fills in defaults and rejects values the architectures cannot take (one-line AttfcError naming the field). */
export function resolveBackboneOptions(opts: BackboneOptions = {}): ResolvedBackboneOptions {
  if ((opts as { fp16?: unknown }).fp16) throw new AttfcError('backbone options: fp16 is not supported on TensorFlow.js backends; remove it');
  const o: ResolvedBackboneOptions = {
    inputSize: opts.inputSize ?? DEFAULT_BACKBONE_OPTIONS.inputSize,
    widthMultiplier: opts.widthMultiplier ?? DEFAULT_BACKBONE_OPTIONS.widthMultiplier,
    embeddingSize: opts.embeddingSize ?? DEFAULT_BACKBONE_OPTIONS.embeddingSize,
    dropout: opts.dropout ?? DEFAULT_BACKBONE_OPTIONS.dropout,
    seed: opts.seed ?? DEFAULT_BACKBONE_OPTIONS.seed,
  };
  const bad = (field: string, value: unknown, expected: string) =>
    new AttfcError(`backbone options: ${field} ${JSON.stringify(value)} is invalid; expected ${expected}`);
  if (!Number.isInteger(o.inputSize) || o.inputSize < MIN_INPUT_SIZE) throw bad('inputSize', o.inputSize, `an integer >= ${MIN_INPUT_SIZE}`);
  if (!Number.isFinite(o.widthMultiplier) || o.widthMultiplier <= 0 || o.widthMultiplier > 4)
    throw bad('widthMultiplier', o.widthMultiplier, 'a number in (0, 4]');
  if (!Number.isInteger(o.embeddingSize) || o.embeddingSize < 1) throw bad('embeddingSize', o.embeddingSize, 'an integer >= 1');
  if (!Number.isFinite(o.dropout) || o.dropout < 0 || o.dropout >= 1) throw bad('dropout', o.dropout, 'a number in [0, 1)');
  if (!Number.isInteger(o.seed)) throw bad('seed', o.seed, 'an integer');
  if (opts.mbfScale !== undefined) {
    const s = opts.mbfScale;
    if (!Number.isFinite(s) || s <= 0 || s > 8 || !Number.isInteger(64 * s)) throw bad('mbfScale', s, 'a number in (0, 8] with 64 * mbfScale a whole number');
    o.mbfScale = s;
  }
  return o;
}

/** The architecture table of a named backbone for resolved options. */
export function backboneSpec(name: string, options: ResolvedBackboneOptions): ArchitectureSpec {
  const n = checkName(name);
  if (options.mbfScale !== undefined && n in IRESNET_LAYERS)
    throw new AttfcError(`backbone options: mbfScale applies to MobileFaceNet (mbf, mbf_large) only, not ${n}`);
  return n in IRESNET_LAYERS ? iresnetSpec(n as IResNetName, options) : mobileFaceNetSpec(n as MobileFaceNetName, options);
}

/** Builds a backbone with seeded initial weights. */
export function createBackbone(name: string, opts: BackboneOptions = {}): Backbone {
  const options = resolveBackboneOptions(opts);
  return new GraphBackbone(checkName(name), options, backboneSpec(name, options));
}

/** The reference parameter count (trainable + frozen BN scale) from the shape table, without allocating. */
export function backboneParamCount(name: string, opts: BackboneOptions = {}): number {
  return countParams(backboneSpec(name, resolveBackboneOptions(opts)));
}
