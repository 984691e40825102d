// InsightfaceRecWriter -> openDataset round trips (insightface layout, quality labels, embedded magic),
// the im2rec layout, and the label / layout errors of RecordIO datasets.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttfcError } from '../../src/errors.js';
import { openDataset, RecordIODataset } from '../../src/data/dataset.js';
import { encodeImageRecord, frameRecord, parseImageRecord, RecordIOFile, type ImageRecord } from '../../src/data/recordio.js';
import { InsightfaceRecWriter, RecordIOWriter } from '../../src/data/recordioWriter.js';

const tmp = mkdtempSync(join(tmpdir(), 'attfc-recwriter-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => mkdtempSync(join(tmp, `d${dirCount++}-`));

/** A fake "image": distinct bytes per (identity, k); the reader never decodes. */
const fakeImage = (identity: number, k: number): Buffer => Buffer.from(`jpeg-${identity}-${k}-`.padEnd(8 + k, 'x'));
const MAGIC = Buffer.from([0x0a, 0x23, 0xd7, 0xce]);

function expectAttfc(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttfcError, `expected AttfcError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'message must be one line');
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

/** Writes identities with the given image counts; returns the images in write order. */
function writeInsightface(dir: string, counts: number[], quality?: (identity: number, k: number) => number): Buffer[] {
  const w = new InsightfaceRecWriter(dir, { width: 96, height: 112 });
  const images: Buffer[] = [];
  counts.forEach((n, identity) => {
    for (let k = 0; k < n; k++) {
      const img = k === 1 ? Buffer.concat([Buffer.alloc(4, 7), MAGIC, fakeImage(identity, k)]) : fakeImage(identity, k);
      images.push(img);
      w.add(identity, img, quality ? [quality(identity, k)] : undefined);
    }
  });
  w.close();
  return images;
}

test('insightface round trip: labels, identity images, payloads, property, layout on disk', () => {
  const dir = freshDir();
  const counts = [3, 1, 4, 2];
  const images = writeInsightface(dir, counts);
  assert.deepEqual(readdirSync(dir).sort(), ['property', 'train.idx', 'train.rec']);
  assert.equal(readFileSync(join(dir, 'property'), 'utf8'), '4,112,96\n');

  // Images at keys 1..10, then identity records 11..14, then the header at key 0, physically last.
  const idxLines = readFileSync(join(dir, 'train.idx'), 'utf8').trim().split('\n');
  assert.deepEqual(idxLines.map((l) => Number(l.split('\t')[0])), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0]);
  const f = RecordIOFile.open(join(dir, 'train.rec'), join(dir, 'train.idx'));
  assert.deepEqual(Array.from(f.readHeader(0).labels), [11, 15]);
  assert.equal(f.readHeader(0).id2, 1);
  assert.deepEqual([11, 12, 13, 14].map((k) => Array.from(f.readHeader(k).labels)), [[1, 4], [4, 5], [5, 9], [9, 11]]);
  const second = parseImageRecord(f.readRecord(2), 'x');
  assert.deepEqual([second.flag, second.label, second.id, second.id2], [0, 0, 2, 0]);
  f.close();

  const ds = openDataset(dir);
  try {
    assert.ok(ds instanceof RecordIODataset);
    assert.equal(ds.layout.kind, 'insightface');
    assert.equal(ds.format, 'recordio');
    assert.equal(ds.source, dir);
    assert.equal(ds.numImages, 10);
    assert.equal(ds.numIdentities, 4);
    assert.deepEqual(ds.imageSize, { width: 96, height: 112 });
    assert.deepEqual(Array.from({ length: 10 }, (_, i) => ds.label(i)), [0, 0, 0, 1, 2, 2, 2, 2, 3, 3]);
    assert.deepEqual(Array.from(ds.identityImages(2)), [4, 5, 6, 7]);
    assert.deepEqual(Array.from(ds.identityImages(1)), [3]);
    for (let i = 0; i < 10; i++) assert.deepEqual(ds.readImage(i), images[i], `image ${i}`);
    assert.equal(ds.quality(0), undefined);
    assert.equal(ds.describe(4), `${join(dir, 'train.rec')} key 5`);
    assert.throws(() => ds.label(10), RangeError);
  } finally {
    ds.close();
  }
  // The same dataset through the .rec path.
  const viaRec = openDataset(join(dir, 'train.rec'));
  assert.equal(viaRec.numImages, 10);
  viaRec.close();
});

test('vector labels [identity, quality] give quality(); records with an embedded magic round trip', () => {
  const dir = freshDir();
  const q = (identity: number, k: number): number => (identity * 10 + k) / 64;
  const images = writeInsightface(dir, [2, 3], q);
  // Image key 2 holds a magic at a 4-aligned data offset, so it is stored in two parts.
  const f = RecordIOFile.open(join(dir, 'train.rec'), join(dir, 'train.idx'));
  const at = f.offsetOf(2);
  const raw = readFileSync(join(dir, 'train.rec'));
  assert.equal(raw.readUInt32LE(at + 4) >>> 29, 1);
  const h = f.readHeader(2);
  assert.equal(h.flag, 2);
  assert.deepEqual(Array.from(h.labels), [0, Math.fround(q(0, 1))]);
  f.close();
  const ds = openDataset(dir);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => ds.quality(i)), [q(0, 0), q(0, 1), q(1, 0), q(1, 1), q(1, 2)].map(Math.fround));
  assert.deepEqual(ds.readImage(1), images[1]);
  assert.deepEqual(ds.readImage(3), images[3]);
  assert.deepEqual(Array.from(ds.identityImages(1)), [2, 3, 4]);
  ds.close();
});

test('im2rec layout (no header): every key is an image, labels from the records, property bounds them', () => {
  const dir = freshDir();
  const w = new RecordIOWriter(join(dir, 'train.rec'), join(dir, 'train.idx'));
  const labels = [2, 0, 2, 1, 0, 2];
  labels.forEach((label, i) => w.writeRecord(i * 3, i % 2 ? { label, id: i, payload: fakeImage(label, i) } : { labels: [label, 0.25 * i], payload: fakeImage(label, i) }));
  w.close();
  let ds = openDataset(dir) as RecordIODataset;
  assert.equal(ds.layout.kind, 'im2rec');
  assert.equal(ds.numImages, 6);
  assert.equal(ds.numIdentities, 3);
  assert.equal(ds.imageSize, undefined);
  assert.deepEqual(Array.from({ length: 6 }, (_, i) => ds.label(i)), labels);
  assert.deepEqual(Array.from(ds.identityImages(2)), [0, 2, 5]);
  assert.deepEqual(Array.from(ds.identityImages(0)), [1, 4]);
  assert.deepEqual(ds.readImage(3), fakeImage(1, 3));
  assert.equal(ds.key(5), 15);
  assert.deepEqual([0, 1, 2].map((i) => ds.quality(i)), [0, undefined, 0.5]);
  ds.close();

  writeFileSync(join(dir, 'property'), '5,112,112\n');
  ds = openDataset(dir) as RecordIODataset;
  assert.equal(ds.numIdentities, 5);
  assert.equal(ds.identityImages(4).length, 0);
  ds.close();
  writeFileSync(join(dir, 'property'), '2,112,112\n');
  expectAttfc(() => openDataset(dir), /train\.rec key 0: label 2 is out of range \(num_classes is 2 from .*property\)/);
});

test('negative and non-integer labels name the key', () => {
  for (const [label, pattern] of [[-1, /label -1 is not a non-negative integer/], [1.5, /label 1\.5 is not a non-negative integer/]] as const) {
    const dir = freshDir();
    const w = new RecordIOWriter(join(dir, 'train.rec'), join(dir, 'train.idx'));
    w.writeRecord(0, { label: 0, payload: fakeImage(0, 0) });
    w.writeRecord(1, { label, payload: fakeImage(0, 1) });
    w.close();
    expectAttfc(() => openDataset(dir), /train\.rec key 1: /, pattern);
  }
});

test('insightface header without identity records: labels come from the image records', () => {
  const dir = freshDir();
  const w = new RecordIOWriter(join(dir, 'train.rec'), join(dir, 'train.idx'));
  [0, 0, 1].forEach((label, i) => w.writeRecord(i + 1, { label, payload: fakeImage(label, i) }));
  w.writeRecord(0, { labels: [4, 6] });
  w.close();
  const ds = openDataset(dir) as RecordIODataset;
  assert.equal(ds.layout.kind, 'insightface');
  assert.equal(ds.numIdentities, 2);
  assert.deepEqual(Array.from(ds.identityImages(0)), [0, 1]);
  ds.close();
});

test('insightface layout errors: inconsistent ranges, labels disagreeing, missing keys, property mismatch', () => {
  /** Writes images with `labels` at keys 1.., identity records with `ranges`, then the header. */
  const build = (labels: number[], ranges: Array<[number, number]>, header?: [number, number]): string => {
    const dir = freshDir();
    const w = new RecordIOWriter(join(dir, 'train.rec'), join(dir, 'train.idx'));
    labels.forEach((label, i) => w.writeRecord(i + 1, { label, payload: fakeImage(label, i) }));
    const idStart = labels.length + 1;
    ranges.forEach((r, j) => w.writeRecord(idStart + j, { labels: r }));
    w.writeRecord(0, { labels: header ?? [idStart, idStart + ranges.length] });
    w.close();
    return dir;
  };
  assert.equal(openDataset(build([0, 0, 1], [[1, 3], [3, 4]])).numImages, 3);
  expectAttfc(() => openDataset(build([0, 0, 1], [[1, 2], [3, 4]])), /train\.rec key 5 \(identity record 1\): image range \[3, 4\) should start at key 2/);
  expectAttfc(() => openDataset(build([0, 0, 1], [[1, 3], [3, 3]])), /train\.rec key 5 \(identity record 1\): identity ranges end at key 2 but the header record says images run to key 3/);
  expectAttfc(() => openDataset(build([0, 1, 1], [[1, 3], [3, 4]])), /train\.rec key 2: label 1 disagrees with identity record key 4 \(identity 0, image keys \[1, 3\)\)/);
  expectAttfc(() => openDataset(build([0, 0, 1], [[1, 3], [3, 4]], [4, 7])), /train\.idx: identity record key 6 is missing/);
  const gap = freshDir();
  const w = new RecordIOWriter(join(gap, 'train.rec'), join(gap, 'train.idx'));
  for (const key of [1, 2, 4]) w.writeRecord(key, { label: 0, payload: fakeImage(0, key) });
  w.writeRecord(5, { labels: [1, 5] });
  w.writeRecord(0, { labels: [5, 6] });
  w.close();
  expectAttfc(() => openDataset(gap), /train\.idx: key 3 is missing \(the header record says image keys run 1\.\.4\)/);
  expectAttfc(() => openDataset(build([0], [[1, 2]], [0, 1])), /train\.rec key 0 \(header record\): expected label \[id_start, id_end\] with 1 <= id_start <= id_end, got \[0, 1\]/);
  const dir = build([0, 0, 1], [[1, 3], [3, 4]]);
  writeFileSync(join(dir, 'property'), '3,112,112\n');
  expectAttfc(() => openDataset(dir), /property: num_classes 3 disagrees with the 2 identities/);
});

test('structural errors through openDataset: truncated file, wrong magic, offset past the end, missing files', () => {
  const dir = freshDir();
  writeInsightface(dir, [3, 2]);
  const rec = join(dir, 'train.rec');
  const bytes = readFileSync(rec);
  // The header record is physically last, so a truncated file fails at open.
  truncateSync(rec, bytes.length - 2);
  expectAttfc(() => openDataset(dir), /train\.rec key 0 \(offset \d+\): record of 32 bytes at offset \d+ runs past the end of the file \(\d+ bytes\); truncated file\?/);

  // A corrupt image record is found when it is read (open only spot-checks first/last images).
  const corrupt = Buffer.from(bytes);
  const f = RecordIOFile.open(rec, join(dir, 'train.idx'));
  const off = f.offsetOf(2);
  f.close();
  corrupt.fill(0, off, off + 4);
  writeFileSync(rec, corrupt);
  const ds = openDataset(dir);
  expectAttfc(() => ds.readImage(1), new RegExp(`train\\.rec key 2 \\(offset ${off}\\): expected RecordIO magic 0a 23 d7 ce at offset ${off}, found 00 00 00 00`));
  ds.close();

  writeFileSync(rec, bytes);
  const idx = readFileSync(join(dir, 'train.idx'), 'utf8');
  writeFileSync(join(dir, 'train.idx'), idx.replace(/^3\t\d+$/m, '3\t99999'));
  expectAttfc(() => openDataset(dir), /train\.idx line 3: offset 99999 \(key 3\) is past the end of .*train\.rec \(\d+ bytes\)/);
  writeFileSync(join(dir, 'train.idx'), idx.replace(/^3\t/m, '3;'));
  expectAttfc(() => openDataset(dir), /train\.idx line 3: expected "key<TAB>offset"/);

  rmSync(join(dir, 'train.idx'));
  expectAttfc(() => openDataset(dir), /train\.idx: file not found/);
  expectAttfc(() => openDataset(join(dir, 'nothing-here')), /nothing-here: no such file or directory/);
});

test('writer: identities in order without gaps, temp files until close, abort leaves nothing', () => {
  const dir = freshDir();
  const w = new InsightfaceRecWriter(dir, { width: 8, height: 8 });
  assert.throws(() => w.add(1, fakeImage(1, 0)), /expected 0/);
  w.add(0, fakeImage(0, 0));
  assert.throws(() => w.add(2, fakeImage(2, 0)), /expected 0 or 1/);
  assert.throws(() => w.add(0, Buffer.alloc(0)), /empty image/);
  assert.equal(existsSync(join(dir, 'train.rec')), false, 'nothing under the real names before close');
  assert.equal(readdirSync(dir).filter((n) => n.endsWith('.partial')).length, 2);
  w.abort();
  assert.deepEqual(readdirSync(dir), []);

  // Closing over an existing dataset replaces it whole.
  writeInsightface(dir, [1, 1]);
  writeInsightface(dir, [2]);
  const ds = openDataset(dir);
  assert.deepEqual([ds.numImages, ds.numIdentities], [2, 1]);
  ds.close();
  assert.deepEqual(readdirSync(dir).sort(), ['property', 'train.idx', 'train.rec']);
});

test('a record that is not an image record: payload of encodeImageRecord matches frameRecord input', () => {
  // Guards the helper used by the writer: framing an encoded record and parsing it back is the identity.
  const rec: ImageRecord = { labels: [3, 0.5], id: 9, id2: 2, payload: Buffer.concat([MAGIC, MAGIC, Buffer.from([1])]) };
  const data = encodeImageRecord(rec);
  const dir = freshDir();
  writeFileSync(join(dir, 'x.rec'), frameRecord(data));
  writeFileSync(join(dir, 'x.idx'), '0\t0\n');
  const f = RecordIOFile.open(join(dir, 'x.rec'), join(dir, 'x.idx'));
  assert.deepEqual(f.readRecord(0), data);
  f.close();
});
