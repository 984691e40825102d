// Options of the synthetic face generator: defaults, validation, and the subset that determines pixels.
import { AttfcError } from '../../errors.js';

/** Bumped whenever a change to the generator changes any output byte; cached datasets then re-render. */
export const GENERATOR_VERSION = 1;

/** Options of `synthesize` (and, through `RenderOptions`, of `identityParams` / `renderImage`). */
export interface SynthOptions {
  /** Training identities; they get ids 0..identities-1. */
  identities: number;
  /** Images rendered per training identity (image indices 0..imagesPerIdentity-1). */
  imagesPerIdentity: number;
  /** Output width = height in pixels (default 112; 32..112 is the useful range for CPU experiments). */
  size?: number;
  /** Master seed (default 0). Same seed and options give byte-identical files. */
  seed?: number;
  /** Probability that an image is heavily degraded (blur / occlusion / low resolution / noise); default 0.2. */
  lowQualityShare?: number;
  /** Identities per family of look-alikes (consecutive ids share most traits); default 4, 1 = no families. */
  familySize?: number;
  /** Held-out identities for the verification set, ids identities..identities+V-1; default max(50, 10%). */
  verifyIdentities?: number;
  /** Verification pairs, half same / half different (default 1000, must be even). */
  verifyPairs?: number;
  /** Best JPEG quality; clean images use 75%..100% of it, some low-quality ones much less (default 92). */
  jpegQuality?: number;
  /** Render threads (default os.cpus().length, or 0 for runs under 1000 images; 0 = the calling thread). Never changes output. */
  workers?: number;
}

/** The options that decide how an image looks (everything except counts and threads). */
export interface RenderOptions {
  size?: number;
  lowQualityShare?: number;
  familySize?: number;
  jpegQuality?: number;
}

export type ResolvedRenderOptions = Required<RenderOptions>;

/** SynthOptions with every default filled in (minus `workers`, which never changes output). */
export interface ResolvedSynthOptions extends ResolvedRenderOptions {
  identities: number;
  imagesPerIdentity: number;
  seed: number;
  verifyIdentities: number;
  verifyPairs: number;
}

export const DEFAULT_SIZE = 112;
export const DEFAULT_LOW_QUALITY_SHARE = 0.2;
export const DEFAULT_FAMILY_SIZE = 4;
export const DEFAULT_VERIFY_PAIRS = 1000;
export const DEFAULT_JPEG_QUALITY = 92;

function checkInt(name: string, value: number, lo: number, hi: number): number {
  if (!Number.isInteger(value) || value < lo || value > hi) {
    throw new AttfcError(`synthetic options: ${name} must be an integer in [${lo}, ${hi}], got ${value}`);
  }
  return value;
}

function checkNumber(name: string, value: number, lo: number, hi: number): number {
  if (!Number.isFinite(value) || value < lo || value > hi) {
    throw new AttfcError(`synthetic options: ${name} must be a number in [${lo}, ${hi}], got ${value}`);
  }
  return value;
}

/** Fills in defaults and checks ranges of the pixel-relevant options; throws AttfcError naming the field. */
export function resolveRenderOptions(opts: RenderOptions = {}): ResolvedRenderOptions {
  return {
    size: checkInt('size', opts.size ?? DEFAULT_SIZE, 16, 1024),
    lowQualityShare: checkNumber('lowQualityShare', opts.lowQualityShare ?? DEFAULT_LOW_QUALITY_SHARE, 0, 1),
    familySize: checkInt('familySize', opts.familySize ?? DEFAULT_FAMILY_SIZE, 1, 1_000_000),
    jpegQuality: checkInt('jpegQuality', opts.jpegQuality ?? DEFAULT_JPEG_QUALITY, 10, 100),
  };
}

/** Fills in defaults and checks every option; throws AttfcError naming the offending field. */
export function resolveSynthOptions(opts: SynthOptions): ResolvedSynthOptions {
  const identities = checkInt('identities', opts.identities, 1, 100_000_000);
  const verifyIdentities = checkInt(
    'verifyIdentities',
    opts.verifyIdentities ?? Math.max(50, Math.round(0.1 * identities)),
    2,
    10_000_000,
  );
  const verifyPairs = checkInt('verifyPairs', opts.verifyPairs ?? DEFAULT_VERIFY_PAIRS, 0, 10_000_000);
  if (verifyPairs % 2 !== 0) {
    throw new AttfcError(`synthetic options: verifyPairs must be even (half same, half different), got ${verifyPairs}`);
  }
  return {
    identities,
    imagesPerIdentity: checkInt('imagesPerIdentity', opts.imagesPerIdentity, 1, 1_000_000),
    seed: checkInt('seed', opts.seed ?? 0, 0, 2 ** 32 - 1),
    ...resolveRenderOptions(opts),
    verifyIdentities,
    verifyPairs,
  };
}

/** The `workers` option if given (an integer in [0, 256]), else undefined. */
export function checkWorkers(workers: number | undefined): number | undefined {
  return workers === undefined ? undefined : checkInt('workers', workers, 0, 256);
}
