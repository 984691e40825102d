// Shared test fixtures for evaluation: a tiny seeded embedding model and a small verification set.
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { Rng } from '../../src/util/rng.js';

/** Input side of the tiny model. */
export const TINY_SIZE = 16;

/** conv 3x3 (4) -> global average pool -> dense 8: a deterministic, asymmetric (flip-sensitive) embedder. */
export function tinyModel(seed = 1): tfl.LayersModel {
  const model = tfl.sequential();
  model.add(
    tfl.layers.conv2d({
      inputShape: [TINY_SIZE, TINY_SIZE, 3],
      filters: 4,
      kernelSize: 3,
      activation: 'relu',
      kernelInitializer: tfl.initializers.glorotUniform({ seed }),
      biasInitializer: 'zeros',
    }),
  );
  model.add(tfl.layers.globalAveragePooling2d({}));
  model.add(tfl.layers.dense({ units: 8, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }));
  return model;
}

/** A w x h RGB image of identity `id`: a colour gradient plus per-image noise, PNG-encoded. */
export async function faceImage(id: number, rng: Rng, w = TINY_SIZE, h = TINY_SIZE): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  const base = new Rng(1000 + id);
  const c = [base.int(256), base.int(256), base.int(256)];
  const gx = base.uniform(-8, 8);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < 3; k++) {
        const v = c[k] + gx * (k === 0 ? x : y) + rng.normal() * 6;
        px[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(v)));
      }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

/** `n` pairs alternating same/different over 6 identities; every 5th image has another size. */
export async function makePairs(n: number, seed = 3): Promise<{ a: Buffer; b: Buffer; same: boolean }[]> {
  const rng = new Rng(seed);
  const pairs: { a: Buffer; b: Buffer; same: boolean }[] = [];
  for (let i = 0; i < n; i++) {
    const same = i % 2 === 0;
    const ida = rng.int(6);
    const idb = same ? ida : (ida + 1 + rng.int(5)) % 6;
    const a = await faceImage(ida, rng);
    const b = i % 5 === 0 ? await faceImage(idb, rng, 20, 24) : await faceImage(idb, rng);
    pairs.push({ a, b, same });
  }
  return pairs;
}
