// The detector's pure parts: anchor decoding, weighted suppression, the window pyramid, the shrink and
// the crop geometry. No model runs here (test/face/detect.test.ts runs the real ones).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boxOverlap, decodeDetections, weightedNms, type RawDetection } from '../../src/face/blazeface.js';
import { fivePointsFromMesh, MESH_POINTS } from '../../src/face/facemesh.js';
import { cropToImage, planWindows, shrinkByBlocks } from '../../src/face/pipeline.js';
import { applyAffine } from '../../src/face/align.js';

test('decodeDetections: 896 anchors, a box and six keypoints relative to the anchor centre, sigmoid scores', () => {
  const regressors = new Float32Array(896 * 16);
  const logits = new Float32Array(896).fill(-10);
  // anchor 0: cell (0, 0) of the 16x16 grid, centre (8, 8); anchor 512: cell (0, 0) of the 8x8 grid, centre (16, 16)
  logits[0] = 2;
  regressors.set([1, -2, 20, 30, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5], 0);
  logits[512] = 0;
  regressors.set([0, 0, 10, 10], 512 * 16);
  logits[895] = 5; // last anchor: cell (7, 7) of the 8x8 grid, centre (240, 240); zero width: dropped
  const dets = decodeDetections(regressors, logits, 0.5);
  assert.equal(dets.length, 2);
  assert.ok(Math.abs(dets[0].score - 1 / (1 + Math.exp(-2))) < 1e-12);
  assert.deepEqual(dets[0].box, [9 - 10, 6 - 15, 20, 30]);
  assert.deepEqual(dets[0].keypoints, [8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]);
  assert.equal(dets[1].score, 0.5);
  assert.deepEqual(dets[1].box, [11, 11, 10, 10]);
  assert.equal(decodeDetections(regressors, logits, 0.9).length, 0);
});

test('boxOverlap and weightedNms: overlapping hits vote on one box, the best score is kept', () => {
  assert.deepEqual(boxOverlap([0, 0, 10, 10], [5, 0, 10, 10]), { iou: 50 / 150, ioMin: 0.5 });
  assert.deepEqual(boxOverlap([0, 0, 10, 10], [20, 20, 5, 5]), { iou: 0, ioMin: 0 });
  const det = (score: number, x: number): RawDetection => ({ score, box: [x, 0, 10, 10], keypoints: [x, 0] });
  const out = weightedNms([det(0.6, 2), det(0.9, 0), det(0.7, 50)]);
  assert.equal(out.length, 2);
  assert.equal(out[0].score, 0.9);
  const x = (0.9 * 0 + 0.6 * 2) / 1.5;
  assert.ok(Math.abs(out[0].box[0] - x) < 1e-12 && Math.abs(out[0].keypoints[0] - x) < 1e-12);
  assert.deepEqual(out[1], det(0.7, 50));
});

test('planWindows: padded and letterboxed views always, tiles only for small faces in large images', () => {
  // a 112x112 face crop: twice its side, then itself; tiles would be below half the detector input
  assert.deepEqual(planWindows(112, 112, 20), [[{ x0: -56, y0: -56, side: 224 }], [{ x0: 0, y0: 0, side: 112 }]]);
  assert.equal(planWindows(640, 480, 32).length, 2, 'the letterboxed view finds faces down to 5% of 640 px');
  const photo = planWindows(640, 480, 16);
  assert.equal(photo.length, 3);
  assert.deepEqual(photo[1], [{ x0: 0, y0: -80, side: 640 }]);
  // 320 px tiles overlapping by half: 3 across, 2 down, covering the image edge to edge
  assert.deepEqual(photo[2].map((w) => [w.x0, w.y0, w.side]), [[0, 0, 320], [160, 0, 320], [320, 0, 320], [0, 160, 320], [160, 160, 320], [320, 160, 320]]);
  // smaller faces asked for: finer tiles, down to half the detector's input
  assert.equal(planWindows(640, 480, 8).length, 4);
  assert.equal(planWindows(640, 480, 4).length, 4);
});

test('shrinkByBlocks averages blocks (edges average what they hold), rounding halves up', () => {
  const data = Uint8Array.from({ length: 3 * 3 * 3 }, (_, i) => Math.floor(i / 3) * 10 + (i % 3));
  const small = shrinkByBlocks({ width: 3, height: 3, data }, 2);
  assert.equal(small.width, 2);
  assert.equal(small.height, 2);
  // pixel values v = 10 * index: block (0,0) = pixels 0,1,3,4 -> 20; (1,0) = 2,5 -> 35; (0,1) = 6,7 -> 65; (1,1) = 8 -> 80
  assert.deepEqual(Array.from(small.data.filter((_, i) => i % 3 === 0)), [20, 35, 65, 80]);
  assert.deepEqual(Array.from(small.data.filter((_, i) => i % 3 === 2)), [22, 37, 67, 82]);
});

test('cropToImage: the crop centre lands on the centre, and its axes follow the angle and scale', () => {
  const m = cropToImage(100, 50, 96, Math.PI / 2, 192);
  const [cx, cy] = applyAffine(m, 95.5, 95.5);
  assert.ok(Math.abs(cx - 100) < 1e-9 && Math.abs(cy - 50) < 1e-9);
  const [rx, ry] = applyAffine(m, 95.5 + 2, 95.5); // two crop pixels right = one image pixel down at 90 degrees
  assert.ok(Math.abs(rx - 100) < 1e-9 && Math.abs(ry - 51) < 1e-9);
});

test('fivePointsFromMesh: eye centres are contour means; nose tip and mouth corners are single mesh points', () => {
  const points = new Float32Array(2 * MESH_POINTS);
  const set = (i: number, x: number, y: number) => ((points[2 * i] = x), (points[2 * i + 1] = y));
  for (const i of [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173]) set(i, 30, 40);
  set(33, 14, 40); // one contour point moved: the mean moves by 1/16 of it
  for (const i of [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398]) set(i, 70, 40);
  set(1, 50, 60);
  set(61, 35, 80);
  set(291, 65, 80);
  assert.deepEqual(fivePointsFromMesh(points), [29, 40, 70, 40, 50, 60, 35, 80, 65, 80]);
});
