// Writes a synthetic face dataset: training identities to train.rec/.idx/property (insightface layout,
// labels [identity, quality]), held-out identities to the verification set synth_val.bin, and the
// generator settings to synth.json. A directory whose synth.json matches the options is reused as is;
// one that holds any other data set (not made by synth, or made with other options) is replaced only
// when asked to (`overwrite`).
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { AttfcError } from '../../errors.js';
import { InsightfaceRecWriter } from '../recordioWriter.js';
import { writeVerificationBin } from '../../eval/binWriter.js';
import { checkWorkers, GENERATOR_VERSION, resolveSynthOptions, type ResolvedSynthOptions, type SynthOptions } from './options.js';
import { planVerificationPairs, type PlannedPair } from './pairs.js';
import { RenderPool } from './pool.js';
import { LOW_QUALITY_THRESHOLD } from './quality.js';
import { ATLAS_TILES, type ImageKey } from './render.js';
import { isSynthSpec } from './spec.js';

export const SYNTH_FILES = {
  rec: 'train.rec',
  idx: 'train.idx',
  property: 'property',
  verification: 'synth_val.bin',
  meta: 'synth.json',
} as const;

/**
 * True when `file` (e.g. a verification .bin) sits in a folder `attfc synth` wrote, i.e. beside its
 * synth.json, or in the folder of a run trained on the on-demand synthetic source (its config.json
 * names `synth:...` data): results on it are results on synthetic faces and must say so.
 */
export function isSyntheticSet(file: string): boolean {
  const dir = dirname(file);
  if (existsSync(join(dir, SYNTH_FILES.meta))) return true;
  try {
    const data = (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { data?: unknown }).data;
    return typeof data === 'string' && isSynthSpec(data);
  } catch {
    return false;
  }
}

/**
 * The atlas tile `synthesize` renders training image i in (it renders them in index order, 16 per
 * atlas): an image's bytes can depend on its tile, so the on-demand source renders it there too.
 */
export function trainImageTile(i: number): number {
  return i % ATLAS_TILES;
}

/** Runs with fewer images than this render on the calling thread unless `workers` is given. */
const SMALL_RUN_IMAGES = 1000;

export interface SynthSummary {
  /** Output directory. */
  out: string;
  options: ResolvedSynthOptions;
  generatorVersion: number;
  trainImages: number;
  identities: number;
  verifyIdentities: number;
  verifyPairs: number;
  /** Distinct images rendered for the verification pairs. */
  verifyImages: number;
  /** Training images with quality below LOW_QUALITY_THRESHOLD. */
  lowQualityImages: number;
  meanQuality: number;
  /** Wall time of the rendering run (of the original run when cached). */
  seconds: number;
  /** Images rendered (training + verification) per second of wall time. */
  imagesPerSecond: number;
  workers: number;
  /** True when an existing matching dataset was reused and nothing was rendered. */
  cached: boolean;
}

interface SynthMeta extends Omit<SynthSummary, 'out' | 'cached'> {
  generator: 'attfc-synth';
  /** false while rendering: the folder is synth's own, but its files are not (yet) this set. */
  complete?: boolean;
}

function readMeta(out: string): SynthMeta | null {
  try {
    return JSON.parse(readFileSync(join(out, SYNTH_FILES.meta), 'utf8')) as SynthMeta;
  } catch {
    return null;
  }
}

/** The options that differ, as "seed 5, not 6" (saved value first). */
function optionDifferences(saved: ResolvedSynthOptions, wanted: ResolvedSynthOptions): string {
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(wanted)])] as (keyof ResolvedSynthOptions)[];
  return keys
    .filter((k) => saved[k] !== wanted[k])
    .map((k) => `${k} ${saved[k]}, not ${wanted[k]}`)
    .join('; ');
}

/**
 * Refuses to render into `out` over a data set synth did not make, or over a finished synthetic set
 * made with other options, unless `overwrite`. An interrupted synth run's folder is synth's own.
 */
function checkReplaceable(out: string, options: ResolvedSynthOptions, overwrite: boolean): void {
  if (overwrite) return;
  const dataFiles = [SYNTH_FILES.rec, SYNTH_FILES.idx, SYNTH_FILES.property, SYNTH_FILES.verification].filter((f) => existsSync(join(out, f)));
  if (dataFiles.length === 0) return;
  const meta = readMeta(out);
  const how = 'pass --overwrite to replace it, or choose another --out';
  if (!meta || meta.generator !== 'attfc-synth')
    throw new AttfcError(`--out ${out}: holds a data set attfc synth did not make (${dataFiles.join(', ')}; no synth.json); ${how}`);
  // synth's own: interrupted, or the very set asked for (made meanwhile by another process)
  if (meta.complete === false || (meta.generatorVersion === GENERATOR_VERSION && meta.options && sameOptions(meta.options, options))) return;
  if (meta.generatorVersion !== GENERATOR_VERSION)
    throw new AttfcError(`--out ${out}: holds a synthetic set made by generator version ${meta.generatorVersion}, not ${GENERATOR_VERSION}; ${how}`);
  throw new AttfcError(`--out ${out}: holds a synthetic set made with other options (${optionDifferences(meta.options, options)}); ${how}`);
}

function sameOptions(a: ResolvedSynthOptions, b: ResolvedSynthOptions): boolean {
  const keys = Object.keys(a) as (keyof ResolvedSynthOptions)[];
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** The summary of a finished dataset in `out` made with exactly these options, or null. */
function cachedSummary(out: string, options: ResolvedSynthOptions): SynthSummary | null {
  const metaPath = join(out, SYNTH_FILES.meta);
  if (!existsSync(metaPath)) return null;
  const meta = readMeta(out);
  if (!meta || meta.complete === false) return null;
  if (meta.generator !== 'attfc-synth' || meta.generatorVersion !== GENERATOR_VERSION || !meta.options) return null;
  if (!sameOptions(meta.options, options)) return null;
  const needed = [SYNTH_FILES.rec, SYNTH_FILES.idx, SYNTH_FILES.property, ...(options.verifyPairs > 0 ? [SYNTH_FILES.verification] : [])];
  if (!needed.every((f) => existsSync(join(out, f)))) return null;
  const { generator: _generator, ...rest } = meta;
  return { ...rest, out, cached: true };
}

/**
 * Renders the synthetic dataset described by `opts` into `out` (see SYNTH_FILES), using a pool of
 * render threads; returns at once if `out/synth.json` records identical options. A folder holding any
 * other data set is an AttfcError unless `overwrite`. `onProgress` is called after every image with
 * (done, total).
 */
export async function synthesize(
  out: string,
  opts: SynthOptions,
  onProgress?: (done: number, total: number) => void,
  { overwrite = false }: { overwrite?: boolean } = {},
): Promise<SynthSummary> {
  const options = resolveSynthOptions(opts);
  const requestedWorkers = checkWorkers(opts.workers);
  const cached = cachedSummary(out, options);
  if (cached) return cached;
  checkReplaceable(out, options, overwrite);

  mkdirSync(out, { recursive: true });
  // the old record no longer describes the files once we start replacing them; this one says the
  // folder is synth's own while it renders (an interrupted run may be repeated without --overwrite)
  const metaPath = join(out, SYNTH_FILES.meta);
  writeFileSync(`${metaPath}.partial`, `${JSON.stringify({ generator: 'attfc-synth', generatorVersion: GENERATOR_VERSION, options, complete: false })}\n`);
  renameSync(`${metaPath}.partial`, metaPath);

  const t0 = performance.now();
  const pairs = planVerificationPairs(options);
  const verifyKeys = verificationKeys(pairs);
  const trainImages = options.identities * options.imagesPerIdentity;
  const total = trainImages + verifyKeys.length;
  const trainKeys: ImageKey[] = [];
  for (let id = 0; id < options.identities; id++) for (let k = 0; k < options.imagesPerIdentity; k++) trainKeys.push({ id, k });

  // starting a worker (TypeScript loader + sharp) costs ~0.7 s of CPU, and rendering on the calling thread
  // already keeps both cores partly busy (sharp rasterises and encodes on its own thread pool)
  const defaultWorkers = total >= SMALL_RUN_IMAGES ? os.cpus().length : 0;
  const workers = Math.max(0, Math.min(requestedWorkers ?? defaultWorkers, Math.ceil(total / 32)));
  const pool = new RenderPool(options.seed, options, workers);
  const writer = new InsightfaceRecWriter(out, { width: options.size, height: options.size });
  let done = 0;
  let lowQualityImages = 0;
  let qualitySum = 0;
  try {
    let i = 0;
    for await (const images of pool.render(trainKeys)) {
      for (const image of images) {
        writer.add(trainKeys[i++].id, image.jpeg, [image.quality]);
        if (image.quality < LOW_QUALITY_THRESHOLD) lowQualityImages++;
        qualitySum += image.quality;
        onProgress?.(++done, total);
      }
    }
    writer.close();

    if (options.verifyPairs > 0) {
      await renderVerificationBin(join(out, SYNTH_FILES.verification), pairs, verifyKeys, pool, () => onProgress?.(++done, total));
    } else {
      rmSync(join(out, SYNTH_FILES.verification), { force: true });
    }
  } catch (e) {
    writer.abort();
    throw e;
  } finally {
    await pool.close();
  }

  const seconds = (performance.now() - t0) / 1000;
  const meta: SynthMeta = {
    generator: 'attfc-synth',
    generatorVersion: GENERATOR_VERSION,
    options,
    trainImages,
    identities: options.identities,
    verifyIdentities: options.verifyIdentities,
    verifyPairs: options.verifyPairs,
    verifyImages: verifyKeys.length,
    lowQualityImages,
    meanQuality: trainImages > 0 ? qualitySum / trainImages : 0,
    seconds,
    imagesPerSecond: total / Math.max(seconds, 1e-9),
    workers,
  };
  writeFileSync(`${metaPath}.partial`, `${JSON.stringify(meta, null, 2)}\n`);
  renameSync(`${metaPath}.partial`, metaPath);
  const { generator: _generator, ...rest } = meta;
  return { ...rest, out, cached: false };
}

/** The distinct images of the verification pairs, in first-seen order. */
function verificationKeys(pairs: readonly PlannedPair[]): ImageKey[] {
  return uniqueKeys(pairs.flatMap((p) => [p.a, p.b]));
}

/** Renders the pairs' images on `pool` and writes them as an insightface verification .bin. */
async function renderVerificationBin(file: string, pairs: readonly PlannedPair[], keys: readonly ImageKey[], pool: RenderPool, onImage?: () => void): Promise<void> {
  const jpegs = new Map<string, Buffer>();
  let j = 0;
  for await (const images of pool.render(keys)) {
    for (const image of images) {
      jpegs.set(keyName(keys[j++]), image.jpeg);
      onImage?.();
    }
  }
  const jpegOf = (key: ImageKey) => jpegs.get(keyName(key)) as Buffer;
  writeVerificationBin(
    file,
    pairs.map((p) => ({ a: jpegOf(p.a), b: jpegOf(p.b), same: p.same })),
  );
}

/**
 * Writes the held-out verification pairs of a synthetic set to `file`: the bytes `synthesize` writes
 * to synth_val.bin for the same options. Returns the number of pairs (0: nothing written).
 */
export async function writeSyntheticVerificationBin(file: string, options: ResolvedSynthOptions, workers?: number): Promise<number> {
  if (options.verifyPairs === 0) return 0;
  const pairs = planVerificationPairs(options);
  const keys = verificationKeys(pairs);
  const threads = Math.max(0, Math.min(workers ?? (keys.length >= SMALL_RUN_IMAGES ? os.cpus().length : 0), Math.ceil(keys.length / 32)));
  const pool = new RenderPool(options.seed, options, threads);
  try {
    await renderVerificationBin(file, pairs, keys, pool);
  } finally {
    await pool.close();
  }
  return pairs.length;
}

function keyName(key: ImageKey): string {
  return `${key.id}/${key.k}`;
}

/** Distinct keys in first-seen order. */
function uniqueKeys(keys: readonly ImageKey[]): ImageKey[] {
  const seen = new Set<string>();
  return keys.filter((key) => {
    const name = keyName(key);
    if (seen.has(name)) return false;
    seen.add(name);
    return true;
  });
}
