// Face detection, landmarks and alignment with the real models on real photos: the astronaut's one face
// with its five points on her eyes, nose tip and mouth corners (in the template's order), none on the
// cat, the same points through EXIF rotation, grey and RGBA files, and scenes composed from AT&T faces
// (rotated, scaled, pasted) whose crops a real recogniser embeds like the crops of the source images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { setupEngine } from '../helpers/engine.js';
import { attData, attDataMissing, facepluginFeatureModel, ortEmbed } from '../helpers/onnx.js';
import { composeScene, cosine, mapPoints, photosDir, photosMissing, placementAffine, type Placement } from '../helpers/faces.js';
import { alignFace, detectFaces, detectFacesInImage, largestFace } from '../../src/face/detect.js';
import { readRgbImage, type RgbImage } from '../../src/face/image.js';
import { normalizeBatch } from '../../src/eval/images.js';
import { ARCFACE_TEMPLATE_112, arcfaceTemplate, estimateSimilarity } from '../../src/face/align.js';

await setupEngine();
const photos = photosDir();
const astronaut = photos ? path.join(photos, 'astronaut.png') : '';

const dist = (a: readonly number[], b: readonly number[]) => Math.hypot(a[0] - b[0], a[1] - b[1]);

// Checked by eye on the photo with the points drawn (scratch rendering, 4x zoom): her right eye's pupil,
// her left eye's, the tip of her nose and the two corners of her mouth.
const ASTRONAUT_POINTS: [number, number][] = [[203, 101.5], [246.5, 104], [222, 131], [200, 138.5], [245.5, 141]];

test('astronaut.png: one face, its five points on the eyes, nose tip and mouth corners, image left to right', { skip: photosMissing() }, async () => {
  const faces = await detectFaces(astronaut);
  assert.equal(faces.length, 1);
  const [f] = faces;
  assert.ok(f.score > 0.8 && f.meshScore > 0.9, `scores ${f.score} ${f.meshScore}`);
  const [x, y, w, h] = f.box;
  assert.ok(x > 160 && y > 60 && x + w < 300 && y + h < 190 && w > 80, `box ${f.box}`);
  f.landmarks5.forEach((p, i) => assert.ok(dist(p, ASTRONAUT_POINTS[i]) < 4, `point ${i}: ${p} vs ${ASTRONAUT_POINTS[i]}`));
  const [re, le, nose, rm, lm] = f.landmarks5;
  assert.ok(re[0] < nose[0] && nose[0] < le[0] && rm[0] < lm[0], 'template order: image left before image right');
  assert.ok(re[1] < nose[1] && nose[1] < rm[1], 'eyes above the nose above the mouth');
});

test('chelsea.png (a cat) has no human face', { skip: photosMissing() }, async () => {
  assert.deepEqual(await detectFaces(path.join(photos as string, 'chelsea.png')), []);
});

test('EXIF-rotated, grey and RGBA files give the upright points of the same face', { skip: photosMissing() }, async () => {
  const [upright] = await detectFaces(astronaut);
  const sideways = await sharp(astronaut).rotate(-90).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer(); // stored rotated, EXIF says turn it back
  const grey = await sharp(astronaut).greyscale().toColourspace('b-w').png().toBuffer();
  const rgba = await sharp(astronaut).ensureAlpha(1).png().toBuffer();
  assert.equal((await sharp(grey).metadata()).channels, 1);
  assert.equal((await sharp(rgba).metadata()).channels, 4);
  for (const [label, bytes, tolerance] of [['EXIF orientation 6 (JPEG)', sideways, 2], ['grey', grey, 2], ['RGBA', rgba, 1e-6]] as const) {
    const faces = await detectFaces(bytes);
    assert.equal(faces.length, 1, label);
    faces[0].landmarks5.forEach((p, i) => assert.ok(dist(p, upright.landmarks5[i]) < tolerance, `${label}: point ${i} ${p} vs ${upright.landmarks5[i]}`));
  }
});

test('alignFace warps the face by the similarity that fits its five points to the ArcFace template', { skip: photosMissing() }, async () => {
  const [f] = await detectFaces(astronaut);
  const crop = await alignFace(astronaut, f.landmarks5, 112);
  assert.equal(crop.data.length, 112 * 112 * 3);
  const m = estimateSimilarity(f.landmarks5.flat(), arcfaceTemplate(112));
  const expected = mapPoints(m, f.landmarks5);
  // a smile moves the mouth corners off the average face's template; the fit spreads that residual
  expected.forEach((p, i) => assert.ok(dist(p, ARCFACE_TEMPLATE_112[i]) < 8, `point ${i} lands at ${p}, template ${ARCFACE_TEMPLATE_112[i]}`));
  // detection is equivariant: the crop's own landmarks are where the warp put the photo's
  const again = largestFace(await detectFacesInImage(crop));
  assert.ok(again, 'a face in its own crop');
  again.landmarks5.forEach((p, i) => assert.ok(dist(p, expected[i]) < 2, `point ${i}: ${p} in the crop, ${expected[i]} expected`));
});

test('AT&T faces (which fill their frame) are found: one every other identity', { skip: attDataMissing() }, async () => {
  const root = path.join(attData() as string, 'att_faces_112');
  const files = readdirSync(root).sort().filter((_, i) => i % 2 === 0).map((d, i) => path.join(root, d, `${1 + (i % 10)}.jpg`));
  assert.equal(files.length, 20);
  for (const f of files) assert.equal((await detectFaces(f)).length, 1, f);
});

test('a composed scene: three rotated, scaled AT&T faces are found, placed where they were pasted, and embed like their sources', { skip: attDataMissing() ?? photosMissing() }, async () => {
  const root = path.join(attData() as string, 'att_faces_112');
  const sources = await Promise.all(['s3/2.jpg', 's17/5.jpg', 's29/8.jpg'].map((f) => readRgbImage(path.join(root, f))));
  const placements: Placement[] = [
    { source: sources[0], angle: -25, scale: 0.9, centre: [120, 150] },
    { source: sources[1], angle: 0, scale: 1.6, centre: [330, 260] },
    { source: sources[2], angle: 30, scale: 2.4, centre: [560, 200] },
  ];
  const scene = composeScene(720, 420, placements, 7);
  const found = await detectFacesInImage(scene);
  assert.equal(found.length, 3, `faces ${JSON.stringify(found.map((f) => f.box))}`);

  const session = await ort.InferenceSession.create(facepluginFeatureModel());
  const embed = async (crop: RgbImage) => ortEmbed(session, normalizeBatch([crop.data], 112), 1, 112, true);
  const sourceEmbeddings: Float32Array[] = [];
  for (const [k, p] of placements.entries()) {
    const [own] = await detectFacesInImage(p.source);
    const expected = mapPoints(placementAffine(p), own.landmarks5);
    // the scene face whose nose is nearest the pasted source's nose
    const face = found.reduce((best, f) => (dist(f.landmarks5[2], expected[2]) < dist(best.landmarks5[2], expected[2]) ? f : best));
    face.landmarks5.forEach((q, i) => assert.ok(dist(q, expected[i]) < 2 * p.scale, `face ${k} point ${i}: ${q} vs ${expected[i]}`));
    const fromScene = await embed(await alignFace(scene, face.landmarks5));
    const fromSource = await embed(await alignFace(p.source, own.landmarks5));
    sourceEmbeddings.push(fromSource);
    const c = cosine(fromScene, fromSource);
    assert.ok(c > 0.9, `face ${k}: cosine(scene crop, source crop) = ${c}`);
  }
  for (let i = 0; i < 3; i++)
    for (let j = i + 1; j < 3; j++) assert.ok(cosine(sourceEmbeddings[i], sourceEmbeddings[j]) < 0.5, `identities ${i} and ${j} stay apart`);
  await session.release();
});
