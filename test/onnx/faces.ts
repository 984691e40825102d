// Synthetic face images (attfc's generator) as normalised NHWC input for the ONNX equality tests.
import { renderPixels } from '../../src/data/synthetic/index.js';
import { normalizeBatch } from '../../src/eval/images.js';

/** n synthetic faces (identities 0..n-1) at size x size, normalised (x/255-0.5)/0.5. */
export async function renderFace(n: number, size: number): Promise<Float32Array> {
  const rgb = await Promise.all(Array.from({ length: n }, async (_, id) => (await renderPixels(9, id, 0, { size })).rgb));
  return normalizeBatch(rgb, size);
}
