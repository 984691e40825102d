// attfc detect / align / verify, eval --align, embed --align and data pack --align as a user runs them:
// one clear line per bad image (empty, not an image, truncated, a 30000x30000 header, no face, a tiny
// face) while the rest of the batch is aligned, the folder layout kept, JSON lines per image and the
// summary; then a real recogniser (faceplugin's MobileFaceNet) on AT&T faces through every --align path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { attData, attDataMissing, facepluginFeatureModel } from '../helpers/onnx.js';
import { photosDir, photosMissing } from '../helpers/faces.js';
import { writeVerificationBin } from '../../src/eval/binWriter.js';
import { openDataset } from '../../src/data/dataset.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-face-cli-'));

function attfc(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/attfc.js', ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, ATTFC_BACKEND: 'wasm' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A PNG that is only a signature, an IHDR chunk declaring width x height, and IEND. */
function pngHeader(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    td.copy(out, 4);
    out.writeUInt32BE(zlib.crc32(td), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IEND', Buffer.alloc(0))]);
}

test('attfc align: a folder of good and bad photos, each bad one a clear line, the rest aligned with the layout kept', { skip: photosMissing() }, async () => {
  const photos = photosDir() as string;
  const astronaut = path.join(photos, 'astronaut.png');
  const root = path.join(dir, 'photos');
  for (const sub of ['p1', 'p2', 'bad']) mkdirSync(path.join(root, sub), { recursive: true });
  await sharp(astronaut).toFile(path.join(root, 'p1', 'astronaut.png'));
  await sharp(astronaut).extract({ left: 200, top: 40, width: 300, height: 300 }).jpeg({ quality: 92 }).toFile(path.join(root, 'p1', 'border.jpg'));
  await sharp(path.join(photos, 'chelsea.png')).toFile(path.join(root, 'p2', 'chelsea.png'));
  const tinyFace = await sharp(astronaut).extract({ left: 170, top: 60, width: 120, height: 120 }).resize(16, 16).png().toBuffer();
  await sharp({ create: { width: 1000, height: 800, channels: 3, background: { r: 90, g: 120, b: 150 } } })
    .composite([{ input: tinyFace, left: 500, top: 300 }])
    .png()
    .toFile(path.join(root, 'p2', 'tiny.png'));
  writeFileSync(path.join(root, 'bad', 'notimage.jpg'), 'this is not an image\n');
  const jpeg = await sharp(astronaut).jpeg().toBuffer();
  writeFileSync(path.join(root, 'bad', 'truncated.jpg'), jpeg.subarray(0, jpeg.length >> 1));
  writeFileSync(path.join(root, 'bad', 'empty.png'), Buffer.alloc(0));
  writeFileSync(path.join(root, 'bad', 'huge.png'), pngHeader(30000, 30000));
  writeFileSync(path.join(root, 'notes.txt'), 'not an image');
  const out = path.join(dir, 'aligned');

  const r = attfc('align', root, '--out', out, '--json');
  assert.equal(r.status, 1, `exit 1: not every image was aligned\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; faces: { box: number[]; score: number; landmarks: number[][]; crop: string | null; atEdge?: boolean }[]; error?: string });
  const byName = Object.fromEntries(lines.map((l) => [path.basename(l.file), l]));
  assert.deepEqual(Object.keys(byName).sort(), ['astronaut.png', 'border.jpg', 'chelsea.png', 'empty.png', 'huge.png', 'notimage.jpg', 'tiny.png', 'truncated.jpg']);
  const expectedErrors: Record<string, RegExp> = {
    'empty.png': /^empty \(0 bytes\); expected an image$/,
    'huge.png': /^30000x30000 pixels is over the 100 megapixel limit; refused before decoding/,
    'notimage.jpg': /^not an image sharp can read \(.*unsupported image format\)$/,
    'truncated.jpg': /^cannot decode the jpeg data \(.*premature end of JPEG/,
    'chelsea.png': /^no face found \(searched 451x300 for faces of 23 px and larger\)$/,
    'tiny.png': /^no face found \(searched 1000x800 for faces of 50 px and larger\)$/,
  };
  for (const [name, re] of Object.entries(expectedErrors)) {
    assert.match(byName[name].error ?? '', re, name);
    assert.deepEqual(byName[name].faces, []);
    assert.match(r.stderr, new RegExp(`^attfc: ${byName[name].file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `, 'm'), `${name}: one line on stderr`);
  }
  const [face] = byName['astronaut.png'].faces;
  assert.equal(byName['astronaut.png'].faces.length, 1);
  assert.equal(face.crop, path.join(out, 'p1', 'astronaut.png'));
  assert.equal(face.landmarks.length, 5);
  assert.equal(face.box.length, 4);
  const border = byName['border.jpg'].faces[0];
  assert.ok(border.atEdge && border.box[0] < 0, 'the face cut by the left edge is aligned and said to be at the edge');
  assert.equal(border.crop, path.join(out, 'p1', 'border.jpg'));
  assert.match(r.stderr, /border\.jpg: face 0 runs past the image edge; its crop is black there/);
  for (const crop of [face.crop, border.crop] as string[]) {
    const meta = await sharp(crop).metadata();
    assert.deepEqual([meta.width, meta.height, meta.format], [112, 112, crop.endsWith('.png') ? 'png' : 'jpeg']);
  }
  const list = readFileSync(path.join(out, 'unaligned.txt'), 'utf8').trim().split('\n');
  assert.equal(list.length, 6);
  const summary = r.stderr.trim().split('\n').pop() as string;
  assert.equal(
    summary,
    `aligned 2 of 8 images (2 crops in ${out}); 2 without a face, 4 unreadable: see ${path.join(out, 'unaligned.txt')}; 1 other file in the folders skipped (not .jpg/.jpeg/.png/.webp)`,
  );

  // every face, at another size, and exit 0 when everything was aligned
  const all = attfc('align', astronaut, '--out', path.join(dir, 'all'), '--size', '96', '--all-faces');
  assert.equal(all.status, 0, all.stderr);
  assert.match(all.stdout, /^aligned 1 of 1 images \(1 crop in .*all\)$/m);
  assert.equal((await sharp(path.join(dir, 'all', 'astronaut_0.png')).metadata()).width, 96);
  const again = attfc('align', astronaut, '--out', path.join(dir, 'all'));
  assert.equal(again.status, 1);
  assert.match(again.stderr, /^attfc: --out .*all: already holds files \(an earlier run\?\); choose an empty folder or pass --overwrite$/m);

  const d = attfc('detect', astronaut, path.join(root, 'missing.png'));
  assert.equal(d.status, 1, 'an unreadable image fails detect');
  assert.match(d.stdout, /astronaut\.png: 1 face\n {2}box 179\.\d,77\.\d 95\.\dx95\.\d {2}score 0\.9\d\d {2}eyes\/nose\/mouth \(20\d\.\d, 10\d\.\d\)/);
  assert.match(d.stdout, /missing\.png: no such file$/m);
});

test('eval/verify/embed/data pack with --align on AT&T faces and the real MobileFaceNet', { skip: attDataMissing() ?? photosMissing() }, async () => {
  const faces = path.join(attData() as string, 'att_faces_112');
  const model = path.join(dir, 'mbf');
  const imp = attfc('import', facepluginFeatureModel(), '--out', model);
  assert.equal(imp.status, 0, imp.stderr);
  // a small verification set: 8 identities x 3 images, every same pair and as many different ones
  const img = (s: number, k: number) => readFileSync(path.join(faces, `s${s}`, `${k}.jpg`));
  const pairs: { a: Buffer; b: Buffer; same: boolean }[] = [];
  for (let s = 1; s <= 8; s++)
    for (let i = 1; i <= 3; i++)
      for (let j = i + 1; j <= 3; j++) {
        pairs.push({ a: img(s, i), b: img(s, j), same: true });
        pairs.push({ a: img(s, i), b: img((s % 8) + 1, j), same: false });
      }
  const bin = path.join(dir, 'att24.bin');
  writeVerificationBin(bin, pairs);
  // (that alignment beats the stored crops is measured on all 3000 pairs: BENCHMARKS.md; 48 pairs are too few to rank)
  const aligned = attfc('eval', '--model', model, '--bin', bin, '--json', '--align');
  assert.equal(aligned.status, 0, aligned.stderr);
  const [a] = JSON.parse(aligned.stdout).sets;
  assert.deepEqual(a.alignment, { aligned: 24, withoutFace: 0 });
  assert.match(aligned.stderr, /^att24: aligned 24 of 24 distinct images$/m);
  assert.ok(a.auc > 0.99 && a.accuracy >= 0.9, `aligned crops of a real recogniser separate the pairs: accuracy ${a.accuracy}, AUC ${a.auc}`);
  assert.match(aligned.stderr, /threshold: same face if cosine similarity >= 0\.\d+ \(chosen on att24, 48 pairs.*recorded in/);

  const same = attfc('verify', '--model', model, path.join(faces, 's3', '5.jpg'), path.join(faces, 's3', '9.jpg'), '--align');
  assert.equal(same.status, 0, same.stderr);
  assert.match(same.stdout, /^cosine similarity 0\.\d{5}: same person \(threshold same face if cosine similarity >= 0\.\d{5} \(chosen on att24/);
  const other = attfc('verify', '--model', model, path.join(faces, 's3', '5.jpg'), path.join(faces, 's12', '5.jpg'), '--align', '--json');
  assert.equal(other.status, 0, other.stderr);
  const o = JSON.parse(other.stdout);
  assert.equal(o.same, false);
  assert.ok(o.similarity < o.threshold);

  const chelsea = path.join(photosDir() as string, 'chelsea.png');
  const e = attfc('embed', '--model', model, '--align', path.join(faces, 's3', '5.jpg'), chelsea);
  assert.equal(e.status, 1);
  assert.match(e.stderr, /^attfc: .*chelsea\.png: no face found \(searched 451x300 for faces of 23 px and larger\); every image needs a face with --align/m);

  const folder = path.join(dir, 'folder');
  for (const s of [4, 5]) {
    mkdirSync(path.join(folder, `s${s}`), { recursive: true });
    for (const k of [1, 2]) writeFileSync(path.join(folder, `s${s}`, `${k}.jpg`), img(s, k));
  }
  mkdirSync(path.join(folder, 'cat'));
  writeFileSync(path.join(folder, 'cat', 'chelsea.png'), readFileSync(chelsea));
  const packed = attfc('data', 'pack', folder, path.join(dir, 'packed'), '--align');
  assert.equal(packed.status, 1, 'an image was skipped');
  assert.match(packed.stderr, /cat\/chelsea\.png: no face found .* \(skipped\)/);
  assert.match(packed.stderr, /skipped 1 images without an aligned face \(1 identity left with none, dropped\)/);
  assert.match(packed.stdout, /^packed 4 images of 2 identities into .*packed \(4 re-encoded to JPEG, property 2,112,112\)$/m);
  const ds = openDataset(path.join(dir, 'packed'));
  assert.equal(ds.numImages, 4);
  ds.close();
  assert.ok(!existsSync(path.join(dir, 'packed', 'unaligned.txt')));
});
