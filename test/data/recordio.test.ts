// RecordIO framing and the MXNet image header, byte for byte against five fixed test vectors (A-E),
// plus index parsing and every structural read error.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttfcError } from '../../src/errors.js';
import {
  encodeImageRecord,
  frameRecord,
  identityLabel,
  parseImageRecord,
  parseIndex,
  readProperty,
  RecordIOFile,
  type ImageRecord,
} from '../../src/data/recordio.js';
import { RecordIOWriter } from '../../src/data/recordioWriter.js';

const tmp = mkdtempSync(join(tmpdir(), 'attfc-recordio-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => mkdtempSync(join(tmp, `d${dirCount++}-`));

const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');
const E_HEADER: ImageRecord = { label: 9, id: 4 };

/** The test vectors, with the records that produce them. */
const VECTORS: Array<{ name: string; key: number; record: ImageRecord; bytes: Buffer }> = [
  {
    name: 'A',
    key: 1,
    record: { label: 3, id: 1, payload: hex('ff d8 ff d9') },
    bytes: hex('0a 23 d7 ce 1c 00 00 00 | 00 00 00 00 00 00 40 40 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 | ff d8 ff d9'),
  },
  {
    name: 'B',
    key: 2,
    record: { label: 7, id: 2, payload: hex('ff d8 ff d9 00') },
    bytes: hex('0a 23 d7 ce 1d 00 00 00 00 00 00 00 00 00 e0 40 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ff d8 ff d9 00 00 00 00'),
  },
  {
    name: 'C',
    key: 0,
    record: { labels: [5, 7], id: 0, id2: 1 },
    bytes: hex('0a 23 d7 ce 20 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 a0 40 00 00 e0 40'),
  },
  {
    name: 'D',
    key: 5,
    record: { labels: [1, 3], id: 5, id2: 0 },
    bytes: hex('0a 23 d7 ce 20 00 00 00 02 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 80 3f 00 00 40 40'),
  },
  {
    name: 'E',
    key: 3,
    record: { ...E_HEADER, payload: hex('0a 23 d7 ce ff d9') },
    bytes: Buffer.concat([hex('0a 23 d7 ce 18 00 00 20'), encodeImageRecord(E_HEADER), hex('0a 23 d7 ce 02 00 00 60 ff d9 00 00')]),
  },
];

function writeRec(dir: string, records: Array<{ key: number; record: ImageRecord }>): { rec: string; idx: string } {
  const rec = join(dir, 'train.rec');
  const idx = join(dir, 'train.idx');
  const w = new RecordIOWriter(rec, idx);
  for (const r of records) w.writeRecord(r.key, r.record);
  w.close();
  return { rec, idx };
}

function assertRecordEquals(got: ReturnType<typeof parseImageRecord>, want: ImageRecord): void {
  const labels = Array.from(want.labels ?? []);
  assert.equal(got.flag, labels.length);
  assert.deepEqual(Array.from(got.labels), labels);
  assert.equal(got.label, labels.length > 0 ? 0 : want.label ?? 0);
  assert.equal(got.id, want.id ?? 0);
  assert.equal(got.id2, want.id2 ?? 0);
  assert.deepEqual(Buffer.from(got.payload), Buffer.from(want.payload ?? []));
}

for (const v of VECTORS) {
  test(`vector ${v.name}: frameRecord(encodeImageRecord) is byte-exact`, () => {
    assert.deepEqual(frameRecord(encodeImageRecord(v.record)), v.bytes);
  });

  test(`vector ${v.name}: RecordIOWriter writes it byte-exact and the reader decodes it`, () => {
    const dir = freshDir();
    const { rec, idx } = writeRec(dir, [{ key: v.key, record: v.record }]);
    assert.deepEqual(readFileSync(rec), v.bytes);
    assert.equal(readFileSync(idx, 'utf8'), `${v.key}\t0\n`);
    const f = RecordIOFile.open(rec, idx);
    try {
      assertRecordEquals(parseImageRecord(f.readRecord(v.key), 'x'), v.record);
    } finally {
      f.close();
    }
  });

  test(`vector ${v.name}: reading the spec bytes from disk`, () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'v.rec'), v.bytes);
    writeFileSync(join(dir, 'v.idx'), `${v.key}\t0\n`);
    const f = RecordIOFile.open(join(dir, 'v.rec'), join(dir, 'v.idx'));
    try {
      assertRecordEquals(parseImageRecord(f.readRecord(v.key), 'x'), v.record);
      const h = f.readHeader(v.key);
      assert.equal(h.payloadLength, (v.record.payload ?? []).length);
      assert.equal(identityLabel(h), v.record.labels ? v.record.labels[0] : v.record.label);
    } finally {
      f.close();
    }
  });
}

test('all five vectors in one file: offsets in the .idx follow write order', () => {
  const dir = freshDir();
  const { rec, idx } = writeRec(dir, VECTORS);
  assert.deepEqual(readFileSync(rec), Buffer.concat(VECTORS.map((v) => v.bytes)));
  let offset = 0;
  const lines = VECTORS.map((v) => {
    const line = `${v.key}\t${offset}\n`;
    offset += v.bytes.length;
    return line;
  });
  assert.equal(readFileSync(idx, 'utf8'), lines.join(''));
  const f = RecordIOFile.open(rec, idx);
  try {
    for (const v of VECTORS) assertRecordEquals(parseImageRecord(f.readRecord(v.key), 'x'), v.record);
  } finally {
    f.close();
  }
});

test('framing: magics at offset 0, in the middle and at the end make first/middle/last parts', () => {
  const magic = hex('0a 23 d7 ce');
  const data = Buffer.concat([magic, hex('01 02 03 04'), magic, hex('05 06'), hex('00 00'), magic]);
  const framed = frameRecord(data);
  const want = Buffer.concat([
    hex('0a 23 d7 ce 00 00 00 20'), // cflag 1, len 0
    hex('0a 23 d7 ce 04 00 00 40 01 02 03 04'), // cflag 2
    hex('0a 23 d7 ce 04 00 00 40 05 06 00 00'), // cflag 2
    hex('0a 23 d7 ce 00 00 00 60'), // cflag 3, len 0
  ]);
  assert.deepEqual(framed, want);
  // A magic that is not 4-aligned inside the data is left alone.
  assert.deepEqual(frameRecord(Buffer.concat([hex('aa bb'), magic])), Buffer.concat([hex('0a 23 d7 ce 06 00 00 00 aa bb'), magic, hex('00 00')]));
  const dir = freshDir();
  writeFileSync(join(dir, 'm.rec'), framed);
  writeFileSync(join(dir, 'm.idx'), '7\t0\n');
  const f = RecordIOFile.open(join(dir, 'm.rec'), join(dir, 'm.idx'));
  try {
    assert.deepEqual(f.readRecord(7), data);
  } finally {
    f.close();
  }
});

test('index parsing: tabs or spaces, CRLF, blank lines; lookup by key', () => {
  const index = parseIndex(Buffer.from('0\t0\r\n\n5 8\n2\t16\n'), 'a.idx', 'a.rec', 100);
  assert.deepEqual(Array.from(index.keys), [0, 5, 2]);
  assert.equal(index.offsetOf(5), 8);
  assert.equal(index.offsetOf(2), 16);
  assert.equal(index.offsetOf(1), -1);
  assert.equal(index.has(9), false);
  // Sparse keys use a map instead of a table.
  const sparse = parseIndex(Buffer.from('1000000000\t0\n3\t4\n'), 'a.idx', 'a.rec', 100);
  assert.equal(sparse.offsetOf(1000000000), 0);
  assert.equal(sparse.offsetOf(3), 4);
});

test('index errors name the .idx line; with onError they are all collected', () => {
  const text = Buffer.from('0\t0\nabc\n1\t99999\n2\t6\n0\t4\n3\t4\n');
  assert.throws(() => parseIndex(text, 'train.idx', 'train.rec', 4096), (e: unknown) => {
    assert.ok(e instanceof AttfcError);
    assert.match(e.message, /^train\.idx line 2: expected "key<TAB>offset", got "abc"$/);
    return true;
  });
  const errors: string[] = [];
  const index = parseIndex(text, 'train.idx', 'train.rec', 4096, (m) => errors.push(m));
  assert.deepEqual(errors, [
    'train.idx line 2: expected "key<TAB>offset", got "abc"',
    'train.idx line 3: offset 99999 (key 1) is past the end of train.rec (4096 bytes)',
    'train.idx line 4: offset 6 (key 2) is not a multiple of 4, so no RecordIO record can start there',
    'train.idx line 5: key 0 appears a second time',
  ]);
  assert.deepEqual(Array.from(index.keys), [0, 3]);
});

function expectAttfc(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttfcError, `expected AttfcError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'message must be one line');
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('read errors: wrong magic, truncated record, bad continuation, short header, missing key and files', () => {
  const dir = freshDir();
  const { rec, idx } = writeRec(dir, [
    { key: 1, record: VECTORS[0]!.record },
    { key: 2, record: VECTORS[1]!.record },
  ]);
  const bytes = readFileSync(rec);
  const offsetB = VECTORS[0]!.bytes.length;

  const wrongMagic = Buffer.from(bytes);
  wrongMagic.writeUInt32LE(0xdeadbeef, offsetB);
  writeFileSync(rec, wrongMagic);
  let f = RecordIOFile.open(rec, idx);
  expectAttfc(() => f.readRecord(2), /train\.rec key 2 \(offset 36\)/, /expected RecordIO magic 0a 23 d7 ce at offset 36, found ef be ad de/);
  expectAttfc(() => f.readHeader(2), /train\.rec key 2 \(offset 36\)/, /magic/);
  assert.equal(parseImageRecord(f.readRecord(1), 'x').label, 3);
  f.close();

  writeFileSync(rec, bytes.subarray(0, bytes.length - 6));
  f = RecordIOFile.open(rec, idx);
  expectAttfc(() => f.readRecord(2), /train\.rec key 2 \(offset 36\)/, /runs past the end of the file \(70 bytes\); truncated/);
  expectAttfc(() => f.readHeader(2), /train\.rec key 2/, /truncated/);
  f.close();

  // A last part (cflag 3) where a record should start.
  const orphan = Buffer.from(bytes);
  orphan.writeUInt32LE(((3 << 29) | 29) >>> 0, offsetB + 4);
  writeFileSync(rec, orphan);
  f = RecordIOFile.open(rec, idx);
  expectAttfc(() => f.readRecord(2), /key 2 \(offset 36\): part at offset 36 has cflag 3, expected a whole record or a first part/);
  expectAttfc(() => f.readRecord(3), /train\.idx: key 3 is missing/);
  f.close();

  const tiny = frameRecord(hex('01 00 00 00 00 00 00 00'));
  writeFileSync(rec, tiny);
  writeFileSync(idx, '4\t0\n');
  f = RecordIOFile.open(rec, idx);
  expectAttfc(() => parseImageRecord(f.readRecord(4), f.describeKey(4)), /train\.rec key 4: record is 8 bytes, shorter than the 24-byte image header/);
  f.close();

  const lying = frameRecord(Buffer.concat([encodeImageRecord({ label: 1 }).fill(0, 0, 4).fill(9, 0, 1)]));
  writeFileSync(rec, lying);
  f = RecordIOFile.open(rec, idx);
  expectAttfc(() => f.readHeader(4), /train\.rec key 4: image header says 9 label floats follow but the record has only 24 bytes/);
  f.close();

  expectAttfc(() => RecordIOFile.open(join(dir, 'nope.rec'), idx), /nope\.rec: file not found/);
  expectAttfc(() => RecordIOFile.open(rec, join(dir, 'nope.idx')), /nope\.idx: file not found/);
  writeFileSync(idx, '4\t0\n5\t64\n');
  expectAttfc(() => RecordIOFile.open(rec, idx), /train\.idx line 2: offset 64 \(key 5\) is past the end of .*train\.rec \(32 bytes\)/);
});

test('property file: parsed, and a malformed one names the file', () => {
  const dir = freshDir();
  writeFileSync(join(dir, 'property'), '85742,112,96\n');
  assert.deepEqual(readProperty(join(dir, 'property')), { numClasses: 85742, height: 112, width: 96 });
  writeFileSync(join(dir, 'property'), '85742;112\n');
  expectAttfc(() => readProperty(join(dir, 'property')), /property: expected one line "num_classes,height,width" of integers, got "85742;112"/);
});
