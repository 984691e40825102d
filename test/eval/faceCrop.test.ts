// The pixel preparation shared by loadEmbedder() and the browser verifier: centre crop, cubic resize, normalisation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { NORMALIZED_VALUES, normalizeRgb, squareCropResize } from '../../src/eval/faceCrop.js';
import { decodeRgbSquare } from '../../src/eval/images.js';
import { Rng } from '../../src/util/rng.js';

/** A smooth w x h RGB image with some noise. */
function smooth(w: number, h: number, seed = 1): Uint8Array {
  const rng = new Rng(seed);
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < 3; k++)
        px[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(128 + 90 * Math.sin((x * (k + 1)) / 9 + y / 7) + rng.normal() * 4)));
  return px;
}

test('an image at the model size is used as it is (alpha dropped)', () => {
  const rgb = smooth(5, 5);
  assert.deepEqual(squareCropResize(rgb, 5, 5, 3, 5), rgb);
  const rgba = new Uint8Array(5 * 5 * 4);
  for (let i = 0; i < 25; i++) rgba.set([...rgb.subarray(i * 3, i * 3 + 3), i], i * 4);
  assert.deepEqual(squareCropResize(rgba, 5, 5, 4, 5), rgb);
});

test('a non-square image whose short side is the model size is only centre-cropped', () => {
  const rgb = smooth(11, 8);
  const out = squareCropResize(rgb, 11, 8, 3, 8);
  for (let y = 0; y < 8; y++) assert.deepEqual(out.subarray(y * 24, y * 24 + 24), rgb.subarray((y * 11 + 1) * 3, (y * 11 + 9) * 3)); // offset floor(3/2) = 1
});

test('resizing: weights sum to one, halves round up, shrinking averages (no aliasing)', () => {
  for (const [from, to] of [[7, 3], [3, 7], [16, 5], [9, 9 * 4]]) {
    const flat = new Uint8Array(from * from * 3).fill(173);
    assert.ok(squareCropResize(flat, from, from, 3, to).every((v) => v === 173), `${from} -> ${to} keeps a flat image flat`);
  }
  // 2x2 -> 1x1 is the mean of the four pixels: (0 + 1 + 0 + 1) / 4 = 0.5 rounds to 1
  assert.deepEqual([...squareCropResize(Uint8Array.from([0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]), 2, 2, 3, 1)], [1, 1, 1]);
  // a 1-pixel checkerboard shrunk 4x becomes flat grey
  const n = 32;
  const board = new Uint8Array(n * n * 3);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) board.fill((x + y) % 2 ? 255 : 0, (y * n + x) * 3, (y * n + x) * 3 + 3);
  const small = squareCropResize(board, n, n, 3, n / 4);
  assert.ok(small.every((v) => Math.abs(v - 127.5) < 3), `checkerboard shrunk: ${[...small.subarray(0, 12)]}`);
});

// Square inputs: sharp's cover also resizes then crops non-square ones, placing the crop up to a pixel differently.
test("close to libvips' bicubic (what sharp's resize gave before): mean difference under half a level", async () => {
  for (const [w, h, size] of [[40, 40, 32], [100, 100, 28], [64, 64, 32], [112, 112, 56]]) {
    const rgb = smooth(w, h, w);
    const ours = squareCropResize(rgb, w, h, 3, size);
    const theirs = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).resize(size, size, { fit: 'cover', kernel: 'cubic' }).raw().toBuffer();
    let diff = 0;
    for (let i = 0; i < ours.length; i++) diff += Math.abs(ours[i] - theirs[i]);
    assert.ok(diff / ours.length < 0.5, `${w}x${h} -> ${size}: mean |difference| ${(diff / ours.length).toFixed(3)}`);
  }
});

test('decodeRgbSquare decodes with sharp and prepares with squareCropResize', async () => {
  const rgb = smooth(30, 26);
  const png = await sharp(rgb, { raw: { width: 30, height: 26, channels: 3 } }).png().toBuffer();
  assert.deepEqual(new Uint8Array(await decodeRgbSquare(png, 20, 'x.png')), squareCropResize(rgb, 30, 26, 3, 20));
});

test('normalisation (x/255 - 0.5)/0.5 in float32 steps', () => {
  assert.equal(NORMALIZED_VALUES[0], -1);
  assert.equal(NORMALIZED_VALUES[255], 1);
  assert.deepEqual([...normalizeRgb(Uint8Array.from([0, 255, 51]))], [-1, 1, Math.fround(-0.6)]);
  const out = new Float32Array(5);
  normalizeRgb([255, 0], out, 3);
  assert.deepEqual([...out], [0, 0, 0, 1, -1]);
});

test('decodeRgbSquare applies the EXIF orientation (as browsers do)', async () => {
  const rgb = smooth(20, 30);
  const upright = await sharp(rgb, { raw: { width: 20, height: 30, channels: 3 } }).png().toBuffer();
  // stored rotated 90 degrees anticlockwise, tagged "rotate 90 clockwise to display" (orientation 6)
  const stored = await sharp(upright).rotate(270).withMetadata({ orientation: 6 }).png().toBuffer();
  assert.notDeepEqual(await decodeRgbSquare(stored, 16, 'tagged.png'), await decodeRgbSquare(await sharp(upright).rotate(270).png().toBuffer(), 16, 'untagged.png'));
  assert.deepEqual(await decodeRgbSquare(stored, 16, 'tagged.png'), await decodeRgbSquare(upright, 16, 'upright.png'));
});
