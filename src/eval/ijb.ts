// IJB-B / IJB-C 1:1 template verification, following insightface's eval_ijbc.py: align by 5 points,
// flip-sum features times the faceness score, media mean then template sum, L2-normalise, cosine
// scores for the template pairs, ROC and TAR at FAR 1e-6 .. 1e-1 (point with the closest FPR).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AttfcError } from '../errors.js';
import { alignRgb } from '../face/align.js';
import { embedBatchWithFlip, type Embedder } from './embedder.js';
import { decodeRgb, normalizeBatch } from './images.js';
import { formatFixed, pairwiseSum } from './numeric.js';
import { rocAuc, rocCurve, tprAtClosestFpr } from './roc.js';

export type IjbTarget = 'IJBB' | 'IJBC';

/** The FARs of the standard IJB table. */
export const IJB_FARS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1] as const;

/** Meta data of an IJB benchmark, row i of every per-image array is line i of the meta files. */
export interface IjbMeta {
  target: IjbTarget;
  /** Image file names relative to loose_crop/. */
  names: string[];
  /** 10 landmark coordinates per image (x1 y1 .. x5 y5). */
  landmarks: Float32Array;
  /** Detector faceness score per image. */
  faceness: Float32Array;
  templates: Int32Array;
  medias: Int32Array;
  pairT1: Int32Array;
  pairT2: Int32Array;
  pairLabel: Uint8Array;
}

/** Paths of the meta files of `target` under `root` (IJB-B files use the ijbb_ prefix). */
export function ijbPaths(root: string, target: IjbTarget) {
  const p = target.toLowerCase();
  return {
    faceTidMid: join(root, 'meta', `${p}_face_tid_mid.txt`),
    pairs: join(root, 'meta', `${p}_template_pair_label.txt`),
    landmarks: join(root, 'meta', `${p}_name_5pts_score.txt`),
    images: join(root, 'loose_crop'),
  };
}

function readText(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new AttfcError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

function lines(path: string): string[] {
  const all = readText(path).toString('utf8').split('\n');
  while (all.length > 0 && all[all.length - 1].trim() === '') all.pop();
  return all;
}

function num(field: string, path: string, line: number, what: string): number {
  const v = Number(field);
  if (field === '' || !Number.isFinite(v)) throw new AttfcError(`${path} line ${line}: ${what} '${field}' is not a number`);
  return v;
}

function int(field: string, path: string, line: number, what: string): number {
  const v = num(field, path, line, what);
  if (!Number.isInteger(v)) throw new AttfcError(`${path} line ${line}: ${what} '${field}' is not an integer`);
  return v;
}

/**
 * Parses "tid1 tid2 label" lines straight from bytes (IJB-C has 15.7M of them). Any run of spaces,
 * tabs or CR separates fields.
 */
export function parsePairFile(buf: Buffer, path: string): { t1: Int32Array; t2: Int32Array; label: Uint8Array } {
  let count = 0;
  for (let i = 0; i < buf.length; i++) if (buf[i] === 0x0a) count++;
  count++;
  const t1 = new Int32Array(count);
  const t2 = new Int32Array(count);
  const label = new Uint8Array(count);
  let n = 0;
  let lineNo = 0;
  let pos = 0;
  const fields: number[] = [];
  while (pos < buf.length) {
    lineNo++;
    fields.length = 0;
    let end = buf.indexOf(0x0a, pos);
    if (end < 0) end = buf.length;
    let i = pos;
    while (i < end) {
      const c = buf[i];
      if (c === 0x20 || c === 0x09 || c === 0x0d) { i++; continue; }
      let v = 0;
      let neg = false;
      if (c === 0x2d) { neg = true; i++; }
      const startDigits = i;
      while (i < end && buf[i] >= 0x30 && buf[i] <= 0x39) v = v * 10 + (buf[i++] - 0x30);
      if (i === startDigits || (i < end && buf[i] !== 0x20 && buf[i] !== 0x09 && buf[i] !== 0x0d))
        throw new AttfcError(`${path} line ${lineNo}: expected 'tid1 tid2 label' integers, got '${buf.toString('utf8', pos, Math.min(end, pos + 80)).trim()}'`);
      fields.push(neg ? -v : v);
    }
    pos = end + 1;
    if (fields.length === 0) continue;
    if (fields.length !== 3)
      throw new AttfcError(`${path} line ${lineNo}: expected 3 fields 'tid1 tid2 label', got ${fields.length}`);
    if (fields[2] !== 0 && fields[2] !== 1) throw new AttfcError(`${path} line ${lineNo}: label ${fields[2]}, expected 0 or 1`);
    t1[n] = fields[0];
    t2[n] = fields[1];
    label[n] = fields[2];
    n++;
  }
  return { t1: t1.slice(0, n), t2: t2.slice(0, n), label: label.slice(0, n) };
}

/** Reads and cross-checks the three meta files. */
export function readIjbMeta(root: string, target: IjbTarget): IjbMeta {
  const paths = ijbPaths(root, target);
  const lmLines = lines(paths.landmarks);
  const n = lmLines.length;
  const names: string[] = new Array(n);
  const landmarks = new Float32Array(n * 10);
  const faceness = new Float32Array(n);
  lmLines.forEach((line, i) => {
    const f = line.trim().split(/\s+/);
    if (f.length !== 12)
      throw new AttfcError(`${paths.landmarks} line ${i + 1}: expected 'name x1 y1 ... x5 y5 score' (12 fields), got ${f.length}`);
    names[i] = f[0];
    for (let k = 0; k < 10; k++) landmarks[i * 10 + k] = num(f[1 + k], paths.landmarks, i + 1, `landmark ${k + 1}`);
    faceness[i] = num(f[11], paths.landmarks, i + 1, 'faceness score');
  });
  const tmLines = lines(paths.faceTidMid);
  if (tmLines.length !== n)
    throw new AttfcError(`${paths.faceTidMid}: ${tmLines.length} lines but ${paths.landmarks} has ${n}; both list every image in the same order`);
  const templates = new Int32Array(n);
  const medias = new Int32Array(n);
  tmLines.forEach((line, i) => {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) throw new AttfcError(`${paths.faceTidMid} line ${i + 1}: expected 'image template_id media_id', got ${f.length} fields`);
    if (f[0] !== names[i])
      throw new AttfcError(`${paths.faceTidMid} line ${i + 1}: image ${f[0]}, but ${paths.landmarks} line ${i + 1} is ${names[i]}; both must list the images in the same order`);
    templates[i] = int(f[1], paths.faceTidMid, i + 1, 'template id');
    medias[i] = int(f[2], paths.faceTidMid, i + 1, 'media id');
  });
  const pairs = parsePairFile(readText(paths.pairs), paths.pairs);
  return { target, names, landmarks, faceness, templates, medias, pairT1: pairs.t1, pairT2: pairs.t2, pairLabel: pairs.label };
}

/** Template features: sorted unique template ids and their L2-normalised features [T, dim]. */
export interface TemplateFeatures {
  ids: Int32Array;
  features: Float64Array;
  dim: number;
}

/**
 * insightface image2template_feature: within each template, average (float32) the image features of
 * each media, sum the media features, then L2-normalise the template feature (zero stays zero).
 */
export function poolTemplates(feats: Float32Array, dim: number, templates: Int32Array, medias: Int32Array): TemplateFeatures {
  const n = templates.length;
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => templates[a] - templates[b] || medias[a] - medias[b] || a - b,
  );
  const ids: number[] = [];
  const out: number[][] = [];
  const media = new Float32Array(dim);
  const tsum = new Float32Array(dim);
  let i = 0;
  while (i < n) {
    const t = templates[order[i]];
    tsum.fill(0);
    while (i < n && templates[order[i]] === t) {
      const m = medias[order[i]];
      media.fill(0);
      let count = 0;
      while (i < n && templates[order[i]] === t && medias[order[i]] === m) {
        const row = order[i] * dim;
        for (let k = 0; k < dim; k++) media[k] += feats[row + k]; // Float32Array: rounds like numpy float32
        count++;
        i++;
      }
      for (let k = 0; k < dim; k++) tsum[k] += count === 1 ? media[k] : Math.fround(media[k] / count);
    }
    ids.push(t);
    out.push(Array.from(tsum));
  }
  const features = new Float64Array(ids.length * dim);
  out.forEach((row, r) => {
    let s = 0;
    for (let k = 0; k < dim; k++) s += row[k] * row[k];
    const norm = Math.sqrt(s) || 1;
    for (let k = 0; k < dim; k++) features[r * dim + k] = row[k] / norm;
  });
  return { ids: Int32Array.from(ids), features, dim };
}

/** Cosine score of each template pair (dot product of the normalised template features). */
export function scoreTemplatePairs(
  pooled: TemplateFeatures,
  t1: Int32Array,
  t2: Int32Array,
  source = 'template pair list',
): Float64Array {
  const { ids, features, dim } = pooled;
  const row = new Map<number, number>();
  ids.forEach((id, r) => row.set(id, r));
  const scores = new Float64Array(t1.length);
  const prod = new Float64Array(dim);
  for (let p = 0; p < t1.length; p++) {
    const a = row.get(t1[p]);
    const b = row.get(t2[p]);
    if (a === undefined || b === undefined)
      throw new AttfcError(`${source} line ${p + 1}: template ${a === undefined ? t1[p] : t2[p]} has no images in the face/template list`);
    for (let k = 0; k < dim; k++) prod[k] = features[a * dim + k] * features[b * dim + k];
    scores[p] = pairwiseSum(prod);
  }
  return scores;
}

export interface IjbResult {
  name: string;
  target: IjbTarget;
  images: number;
  templates: number;
  pairs: number;
  /** TAR at each of IJB_FARS (ROC point with the closest FPR, as eval_ijbc.py). */
  tarAtFar: { far: number; tar: number }[];
  auc: number;
  /** ROC over all template pairs, and the count of negative pairs behind it. */
  roc: { fpr: number[]; tpr: number[]; negatives: number };
}

/** ROC, AUC and the TAR@FAR row from pair scores and labels. */
export function ijbMetrics(scores: Float64Array, labels: Uint8Array) {
  const roc = rocCurve(scores, Array.from(labels, (l) => l === 1));
  return {
    roc,
    auc: rocAuc(roc),
    tarAtFar: IJB_FARS.map((far) => ({ far, tar: tprAtClosestFpr(roc, far) })),
  };
}

export interface EvaluateIjbOptions {
  batchSize?: number;
  /** Called after every batch with images done / total. */
  onProgress?: (done: number, total: number) => void;
  /** Name in reports (default the target). */
  name?: string;
}

/**
 * Image features of every listed image: aligned crop and its mirror embedded, summed, times the
 * faceness score (not normalised: the norm carries quality, as in insightface's N1/D1/F2 mode).
 */
export async function embedIjbImages(
  embedder: Embedder,
  root: string,
  meta: IjbMeta,
  options: Pick<EvaluateIjbOptions, 'batchSize' | 'onProgress'> = {},
): Promise<{ feats: Float32Array; dim: number }> {
  const images = ijbPaths(root, meta.target).images;
  const size = embedder.inputSize;
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 32));
  const total = meta.names.length;
  let feats = new Float32Array(0);
  let dim = 0;
  for (let start = 0; start < total; start += batchSize) {
    const end = Math.min(total, start + batchSize);
    const aligned = await Promise.all(
      meta.names.slice(start, end).map(async (name, k) => {
        const i = start + k;
        const file = join(images, name);
        const img = await decodeRgb(file, file, true);
        return alignRgb(img.data, img.width, img.height, meta.landmarks.subarray(i * 10, i * 10 + 10), size);
      }),
    );
    const e = await embedBatchWithFlip(embedder, normalizeBatch(aligned, size), end - start);
    if (start === 0) {
      dim = e.dim;
      feats = new Float32Array(total * dim);
    }
    const flip = e.flip as Float32Array;
    for (let k = 0; k < end - start; k++) {
      const score = meta.faceness[start + k];
      for (let j = 0; j < dim; j++) {
        // float32 sum, then float32 product with the score (numpy float32 arithmetic)
        feats[(start + k) * dim + j] = Math.fround(e.orig[k * dim + j] + flip[k * dim + j]) * score;
      }
    }
    options.onProgress?.(end, total);
  }
  return { feats, dim };
}

/** Runs the whole IJB-B/C protocol for `embedder` on the benchmark at `root`. */
export async function evaluateIjb(
  embedder: Embedder,
  root: string,
  target: IjbTarget,
  options: EvaluateIjbOptions = {},
): Promise<IjbResult> {
  const meta = readIjbMeta(root, target);
  const paths = ijbPaths(root, target);
  if (meta.names.length === 0) throw new AttfcError(`${paths.landmarks}: no images listed`);
  const { feats, dim } = await embedIjbImages(embedder, root, meta, options);
  const pooled = poolTemplates(feats, dim, meta.templates, meta.medias);
  const scores = scoreTemplatePairs(pooled, meta.pairT1, meta.pairT2, paths.pairs);
  const m = ijbMetrics(scores, meta.pairLabel);
  return {
    name: options.name ?? target,
    target,
    images: meta.names.length,
    templates: pooled.ids.length,
    pairs: scores.length,
    tarAtFar: m.tarAtFar,
    auc: m.auc,
    roc: { fpr: Array.from(m.roc.fpr), tpr: Array.from(m.roc.tpr), negatives: m.roc.negatives },
  };
}

/** The TAR@FAR table as eval_ijbc.py prints it (TAR in percent, 2 decimals). */
export function formatIjbTable(results: readonly { name: string; target: string; tarAtFar: { far: number; tar: number }[] }[]): string {
  const header = ['Methods', '1e-06', '1e-05', '0.0001', '0.001', '0.01', '0.1']; // Python's str() of IJB_FARS
  const rows = results.map((r) => [`${r.name}-${r.target}`, ...r.tarAtFar.map((t) => formatFixed(t.tar * 100, 2))]);
  return formatTable(header, rows);
}

/** A boxed text table (PrettyTable style). */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (cells: string[]) => `|${cells.map((x, c) => ` ${x.padStart(Math.floor((widths[c] + x.length) / 2)).padEnd(widths[c])} `).join('|')}|`;
  return [rule, line(header), rule, ...rows.map(line), rule].join('\n');
}
