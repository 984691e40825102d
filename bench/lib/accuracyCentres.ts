// Post-hoc look at AttFC's class centres under a trained model:
//   true class centre (TCC) = normalised mean of the normalised f_q embeddings of ALL images of an identity;
//   GCC = the attention loader's centre from one f_q query and K-1 f_k keys of the identity (drawn like the
//         training sampler: uniformly with replacement from all its images);
//   single-image centre = the normalised f_k embedding of one key image (what a K=2 / DCQ queue stores).
// Also the attention weight given to low- vs high-quality key images (quality < 0.5 = heavily degraded).
import { openDataset } from '../../src/data/dataset.js';
import { decodeToRgb } from '../../src/data/decode.js';
import { normalizeBatch } from '../../src/eval/images.js';
import { embedBatch } from '../../src/eval/embedder.js';
import { generateClassCentres, type AttentionMode } from '../../src/heads/attfc/index.js';
import type { Backbone } from '../../src/backbones/index.js';
import { Rng } from '../../src/util/rng.js';
import { AttentionByQuality, cosineRows, summarise, trueClassCentre } from './accuracyStats.js';

export interface CentreAnalysisOptions {
  dataset: string;
  fq: Backbone;
  fk: Backbone;
  inputSize: number;
  /** K-1. */
  keysPerSample: number;
  attention: AttentionMode;
  temperature: number;
  /** Training identities examined (a seeded random subset). */
  identities: number;
  /** GCC draws per identity. */
  draws: number;
  seed: number;
}

export interface CentreAnalysis {
  identities: number;
  draws: number;
  /** Mean cos(GCC, TCC under f_q). */
  gccTccCosine: number;
  /** Mean cos(single f_k image, TCC under f_q). */
  singleImageTccCosine: number;
  /** The same two with the TCC taken under f_k (the encoder that made the GCC). */
  gccTccCosineFk: number;
  singleImageTccCosineFk: number;
  /** Share of draws whose GCC (single image) is closer to its own TCC than to any other examined identity's (f_q). */
  gccNearestTccAccuracy: number;
  singleNearestTccAccuracy: number;
  attentionLowQuality: number;
  attentionHighQuality: number;
  lowQualityKeys: number;
  highQualityKeys: number;
}

const EMBED_BATCH = 128;

/** Raw embeddings [n, D] of dataset images `indices` under `net` in inference mode. */
async function embedImages(net: Backbone, ds: ReturnType<typeof openDataset>, indices: readonly number[], size: number): Promise<{ dim: number; values: Float32Array }> {
  const embedder = { inputSize: size, embed: (x: Parameters<Backbone['apply']>[0]) => net.apply(x, false) };
  let values: Float32Array | null = null;
  let dim = 0;
  for (let start = 0; start < indices.length; start += EMBED_BATCH) {
    const part = indices.slice(start, start + EMBED_BATCH);
    const rgb = await Promise.all(part.map(async (i) => decodeToRgb(await ds.readImage(i), size, ds.describe(i))));
    const out = await embedBatch(embedder, normalizeBatch(rgb, size), part.length);
    if (!values) {
      dim = out.dim;
      values = new Float32Array(indices.length * dim);
    }
    values.set(out.orig, start * dim);
  }
  return { dim, values: values ?? new Float32Array(0) };
}

/** Row of `table` [*, D] (unit rows) with the largest dot product with `v` (any norm). */
function nearestRow(table: Float32Array, v: Float32Array, D: number): number {
  let best = -1;
  let bestDot = -Infinity;
  for (let r = 0; r * D < table.length; r++) {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += table[r * D + d] * v[d];
    if (dot > bestDot) {
      bestDot = dot;
      best = r;
    }
  }
  return best;
}

export async function analyseCentres(o: CentreAnalysisOptions): Promise<CentreAnalysis> {
  const ds = openDataset(o.dataset);
  try {
    const rng = new Rng(o.seed);
    const ids = rng.shuffle(Int32Array.from({ length: ds.numIdentities }, (_, i) => i)).slice(0, Math.min(o.identities, ds.numIdentities));
    const groups: number[][] = [];
    const images: number[] = [];
    for (const id of ids) {
      const members = Array.from(ds.identityImages(id));
      groups.push(members.map((_, k) => images.length + k));
      images.push(...members);
    }
    const q = await embedImages(o.fq, ds, images, o.inputSize);
    const k = await embedImages(o.fk, ds, images, o.inputSize);
    const D = q.dim;
    const quality = images.map((i) => ds.quality(i) ?? NaN);
    const K1 = o.keysPerSample;
    const gcc: number[] = [];
    const single: number[] = [];
    const gccK: number[] = [];
    const singleK: number[] = [];
    const byQuality = new AttentionByQuality();
    const tccs = new Float32Array(groups.length * D);
    groups.forEach((rows, g) => tccs.set(trueClassCentre(q.values, rows, D), g * D));
    let gccHits = 0;
    let singleHits = 0;
    for (const [g, rows] of groups.entries()) {
      const tccQ = tccs.subarray(g * D, (g + 1) * D);
      const tccK = trueClassCentre(k.values, rows, D);
      for (let d = 0; d < o.draws; d++) {
        const query = rows[rng.int(rows.length)];
        const keyRows = Array.from({ length: K1 }, () => rows[rng.int(rows.length)]);
        const keys = new Float32Array(K1 * D);
        keyRows.forEach((r, j) => keys.set(k.values.subarray(r * D, (r + 1) * D), j * D));
        const c = generateClassCentres(q.values.slice(query * D, (query + 1) * D), keys, K1, D, { mode: o.attention, temperature: o.temperature });
        gcc.push(cosineRows(c.centres, 0, tccQ, 0, D));
        gccK.push(cosineRows(c.centres, 0, tccK, 0, D));
        single.push(cosineRows(keys, 0, tccQ, 0, D));
        singleK.push(cosineRows(keys, 0, tccK, 0, D));
        byQuality.add(c.weights, keyRows.map((r) => quality[r]));
        if (nearestRow(tccs, c.centres, D) === g) gccHits++;
        if (nearestRow(tccs, keys.subarray(0, D), D) === g) singleHits++;
      }
    }
    const att = byQuality.result();
    return {
      identities: ids.length,
      draws: gcc.length,
      gccTccCosine: summarise(gcc).mean,
      singleImageTccCosine: summarise(single).mean,
      gccTccCosineFk: summarise(gccK).mean,
      singleImageTccCosineFk: summarise(singleK).mean,
      gccNearestTccAccuracy: gccHits / Math.max(1, gcc.length),
      singleNearestTccAccuracy: singleHits / Math.max(1, single.length),
      attentionLowQuality: att.low,
      attentionHighQuality: att.high,
      lowQualityKeys: att.lowKeys,
      highQualityKeys: att.highKeys,
    };
  } finally {
    ds.close();
  }
}
