// Similarity-transform estimation and the OpenCV-style bilinear warp used for IJB alignment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  alignRgb,
  applyAffine,
  arcfaceTemplate,
  estimateSimilarity,
  invertAffine,
  warpAffineBilinear,
  type Affine,
} from '../../src/face/align.js';

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

/** scale * rotation(theta) + translation. */
function similarity(scale: number, theta: number, tx: number, ty: number): Affine {
  const c = scale * Math.cos(theta);
  const s = scale * Math.sin(theta);
  return [c, -s, tx, s, c, ty];
}

test('the 112x112 template is the float32 ArcFace template', () => {
  const t = arcfaceTemplate(112);
  close(t[0], 38.29460144042969, 0);
  close(t[1], 51.69630050659180, 1e-12);
  close(t[8], 70.72990417480469, 1e-12);
  close(arcfaceTemplate(56)[0], t[0] / 2, 1e-12);
});

test('estimateSimilarity recovers a known similarity transform exactly', () => {
  const known = similarity(1.7, 0.35, 12.5, -40.25);
  const src = [...arcfaceTemplate(112)];
  const dst: number[] = [];
  for (let i = 0; i < 5; i++) dst.push(...applyAffine(known, src[2 * i], src[2 * i + 1]));
  const m = estimateSimilarity(src, dst);
  m.forEach((v, i) => close(v, known[i]));
  // and the inverse direction (what alignment uses: landmarks -> template)
  const back = estimateSimilarity(dst, src);
  invertAffine(known).forEach((v, i) => close(back[i], v));
});

test('estimateSimilarity is the least-squares fit without reflection', () => {
  // a mirrored point set cannot be matched by a proper similarity: the fit keeps det > 0
  const src = [0, 0, 10, 0, 0, 10, 10, 10, 5, 7];
  const mirrored = src.map((v, i) => (i % 2 === 0 ? -v : v));
  const m = estimateSimilarity(src, mirrored);
  assert.ok(m[0] * m[4] - m[1] * m[3] >= 0);
  // perturbing the solution never lowers the squared error
  const err = (a: Affine) => {
    let e = 0;
    for (let i = 0; i < 5; i++) {
      const [x, y] = applyAffine(a, src[2 * i], src[2 * i + 1]);
      e += (x - mirrored[2 * i]) ** 2 + (y - mirrored[2 * i + 1]) ** 2;
    }
    return e;
  };
  const base = err(m);
  for (const d of [1e-3, -1e-3]) {
    assert.ok(err([m[0] + d, m[1], m[2], m[3], m[4] + d, m[5]]) >= base);
    assert.ok(err([m[0], m[1] - d, m[2], m[3] + d, m[4], m[5]]) >= base);
    assert.ok(err([m[0], m[1], m[2] + d, m[3], m[4], m[5] + d]) >= base);
  }
  assert.throws(() => estimateSimilarity([1, 1, 1, 1], [0, 0, 1, 1]), /landmarks are all at one point/);
});

/** A w x h single-channel ramp image, value = (x * 7 + y * 13) % 256. */
function ramp(w: number, h: number): Uint8Array {
  const img = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img[y * w + x] = (x * 7 + y * 13) % 256;
  return img;
}

test('warp: integer translations and 2x downscaling copy pixels exactly', () => {
  const src = ramp(20, 16);
  // M maps source -> destination: dst(x, y) = src(x + 3, y + 2)
  const out = warpAffineBilinear(src, 20, 16, [1, 0, -3, 0, 1, -2], 10, 8, 1);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 10; x++) assert.equal(out[y * 10 + x], src[(y + 2) * 20 + x + 3]);
  // dst(x, y) = src(2x, 2y)
  const half = warpAffineBilinear(src, 20, 16, [0.5, 0, 0, 0, 0.5, 0], 10, 8, 1);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 10; x++) assert.equal(half[y * 10 + x], src[2 * y * 20 + 2 * x]);
});

test('warp: half-pixel shifts blend with 15-bit weights, outside pixels count as black', () => {
  const src = ramp(8, 8);
  // dst(x, y) = src(x + 0.5, y): weights 16384/16384 -> (a + b + 1) >> 1
  const out = warpAffineBilinear(src, 8, 8, [1, 0, -0.5, 0, 1, 0], 8, 8, 1);
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 7; x++) assert.equal(out[y * 8 + x], (src[y * 8 + x] + src[y * 8 + x + 1] + 1) >> 1);
    // x = 7 samples 7.5: the right neighbour is outside (0)
    assert.equal(out[y * 8 + 7], (src[y * 8 + 7] + 1) >> 1);
  }
  // shifted entirely outside: all black
  const gone = warpAffineBilinear(src, 8, 8, [1, 0, 50, 0, 1, 0], 8, 8, 1);
  assert.ok(gone.every((v) => v === 0));
});

test('alignRgb maps the landmarks onto the template', () => {
  // a 200x180 RGB image with a bright 5x5 square at each landmark of a rotated, scaled, shifted face
  const W = 200, H = 180;
  const face = similarity(1.6, -0.2, 30, 20);
  const t = arcfaceTemplate(112);
  const lm: number[] = [];
  for (let i = 0; i < 5; i++) lm.push(...applyAffine(face, t[2 * i], t[2 * i + 1]));
  const img = new Uint8Array(W * H * 3);
  for (let i = 0; i < 5; i++) {
    const cx = Math.round(lm[2 * i]), cy = Math.round(lm[2 * i + 1]);
    for (let y = cy - 2; y <= cy + 2; y++) for (let x = cx - 2; x <= cx + 2; x++) img.fill(255, (y * W + x) * 3, (y * W + x) * 3 + 3);
  }
  const out = alignRgb(img, W, H, lm, 112);
  assert.equal(out.length, 112 * 112 * 3);
  for (let i = 0; i < 5; i++) {
    const x = Math.round(t[2 * i]), y = Math.round(t[2 * i + 1]);
    assert.ok(out[(y * 112 + x) * 3] > 200, `landmark ${i} at (${x}, ${y}) is bright`);
  }
  // far from the landmarks the crop is dark
  assert.equal(out[(5 * 112 + 5) * 3], 0);
});
