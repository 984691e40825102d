// ONNX test helpers: onnxruntime embeddings of NHWC batches, cosine distances, backbones with every
// weight and batch-norm statistic away from its initial value, and the real data the tests compare on
// (the faceplugin MobileFaceNet from the npm registry, the AT&T faces from ../shared).
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Backbone } from '../../src/backbones/index.js';
import { Rng } from '../../src/util/rng.js';

/** NHWC [n, s, s, 3] -> NCHW [n, 3, s, s]. */
export function toNchw(nhwc: Float32Array, n: number, size: number): Float32Array {
  const out = new Float32Array(nhwc.length);
  const plane = size * size;
  for (let b = 0; b < n; b++)
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[b * 3 * plane + c * plane + p] = nhwc[b * 3 * plane + p * 3 + c];
  return out;
}

/** Embeddings [n, D] from an onnxruntime session; `oneByOne` for files with a fixed batch of 1. */
export async function ortEmbed(session: ort.InferenceSession, nhwc: Float32Array, n: number, size: number, oneByOne = false): Promise<Float32Array> {
  const nchw = toNchw(nhwc, n, size);
  const per = 3 * size * size;
  const run = async (from: number, count: number) => {
    const x = new ort.Tensor('float32', nchw.subarray(from * per, (from + count) * per), [count, 3, size, size]);
    const r = await session.run({ [session.inputNames[0]]: x });
    return r[session.outputNames[0]].data as Float32Array;
  };
  if (!oneByOne) return Float32Array.from(await run(0, n));
  const parts: Float32Array[] = [];
  for (let i = 0; i < n; i++) parts.push(Float32Array.from(await run(i, 1)));
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  parts.forEach((p, i) => out.set(p, i * p.length));
  return out;
}

/** attfc embeddings [n, D] of an NHWC batch (inference mode). */
export function attfcEmbed(b: Backbone, nhwc: Float32Array, n: number, size: number): Float32Array {
  return tf.tidy(() => b.apply(tf.tensor4d(nhwc, [n, size, size, 3]), false).dataSync() as Float32Array).slice();
}

/** 1 - cos for each of the n rows. */
export function cosineDistances(a: Float32Array, b: Float32Array, n: number): number[] {
  const d = a.length / n;
  return Array.from({ length: n }, (_, i) => {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let j = i * d; j < (i + 1) * d; j++) {
      dot += a[j] * b[j];
      na += a[j] * a[j];
      nb += b[j] * b[j];
    }
    return 1 - dot / Math.sqrt(na * nb);
  });
}

/**
 * Moves batch-norm statistics and affine parameters and PReLU slopes to seeded random values, so an
 * exporter that swaps mean and variance, or drops a slope, shows in the embeddings.
 */
export function randomiseNorms(b: Backbone, seed: number): void {
  const rng = new Rng(seed);
  const prefix = (name: string) => name.slice(0, name.lastIndexOf('.'));
  const norms = new Set(b.variables().filter((v) => v.name.endsWith('.running_mean')).map((v) => prefix(v.name)));
  tf.tidy(() => {
    for (const v of b.variables()) {
      const suffix = v.name.slice(v.name.lastIndexOf('.') + 1);
      const isConv = v.variable.rank === 4;
      const isDense = v.variable.rank === 2;
      if (isConv || isDense) continue;
      const n = v.variable.size;
      const values = new Float32Array(n);
      const prelu = suffix === 'weight' && !norms.has(prefix(v.name));
      for (let i = 0; i < n; i++) {
        if (suffix === 'running_var') values[i] = rng.uniform(0.5, 1.5);
        else if (suffix === 'running_mean') values[i] = rng.normal() * 0.1;
        else if (suffix === 'bias') values[i] = rng.normal() * 0.1;
        else if (prelu) values[i] = rng.uniform(0, 0.4);
        else values[i] = rng.uniform(0.5, 1.5); // BN gamma
      }
      v.variable.assign(tf.tensor(values, v.variable.shape));
    }
  });
}

/** Seeded images in [-1, 1], NHWC. */
export function randomImages(n: number, size: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * size * size * 3 }, () => rng.uniform(-1, 1));
}

/**
 * The AT&T faces folder: $ATTFC_ATT_DATA, else shared/data/att beside the clone (CI, the main checkout)
 * or one level further up (a git worktree under a folder of worktrees); null when absent.
 */
export function attData(): string | null {
  const candidates = process.env.ATTFC_ATT_DATA ? [process.env.ATTFC_ATT_DATA] : [path.resolve('..', 'shared', 'data', 'att'), path.resolve('..', '..', 'shared', 'data', 'att')];
  return candidates.find((dir) => existsSync(path.join(dir, 'att_pairs.bin'))) ?? null;
}

/**
 * Why a test that needs the AT&T faces cannot run, or undefined when it can. With ATTFC_REQUIRE_ATT=1
 * the absence is a failure, not a skip.
 */
export function attDataMissing(): string | undefined {
  if (attData()) return undefined;
  const msg = 'the AT&T faces are not at ../shared/data/att (set ATTFC_ATT_DATA to their folder)';
  if (process.env.ATTFC_REQUIRE_ATT === '1') throw new Error(`${msg}; ATTFC_REQUIRE_ATT=1 requires them`);
  return msg;
}

export const FACEPLUGIN_PACKAGE = 'faceplugin-face-recognition-js@0.0.1';
export const FACEPLUGIN_FEATURE_SHA256 = '87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581';

/**
 * model/fr_feature.onnx of the faceplugin package (insightface MobileFaceNet, licence not stated: used in
 * tests only, never committed or shipped). Fetched once with `npm pack` into .cache/ (git-ignored, so
 * also outside the published package) and checked against its sha256.
 */
export function facepluginFeatureModel(): string {
  const dir = path.resolve('.cache', 'faceplugin-face-recognition-js-0.0.1');
  const file = path.join(dir, 'fr_feature.onnx');
  const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
  if (existsSync(file) && sha(file) === FACEPLUGIN_FEATURE_SHA256) return file;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'attfc-faceplugin-'));
  try {
    const pack = spawnSync('npm', ['pack', FACEPLUGIN_PACKAGE, '--pack-destination', tmp, '--silent'], { encoding: 'utf8', timeout: 300_000 });
    if (pack.status !== 0) throw new Error(`npm pack ${FACEPLUGIN_PACKAGE} failed: ${(pack.stderr || pack.error?.message || '').trim()}`);
    const tgz = path.join(tmp, pack.stdout.trim().split('\n').pop() as string);
    const untar = spawnSync('tar', ['-xzf', tgz, '-C', tmp, 'package/model/fr_feature.onnx'], { encoding: 'utf8' });
    if (untar.status !== 0) throw new Error(`tar could not extract fr_feature.onnx: ${untar.stderr.trim()}`);
    const got = path.join(tmp, 'package', 'model', 'fr_feature.onnx');
    if (sha(got) !== FACEPLUGIN_FEATURE_SHA256) throw new Error(`fr_feature.onnx has sha256 ${sha(got)}, expected ${FACEPLUGIN_FEATURE_SHA256}`);
    mkdirSync(dir, { recursive: true });
    renameSync(got, file);
    return file;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
