// Verification .bin reading and writing: byte-exact Python 2 protocol-2 output, the Python 3 and numpy
// variants assembled byte by byte, and clear errors for malformed files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseVerificationBin, readVerificationBin } from '../../src/eval/binReader.js';
import { verificationBinChunks, writeVerificationBin } from '../../src/eval/binWriter.js';
import { AttfcError } from '../../src/errors.js';
import { Rng } from '../../src/util/rng.js';

/** Bytes from numbers and latin-1 strings, so each opcode can be written on its own commented line. */
function bytes(...parts: (number | number[] | string | Buffer)[]): Buffer {
  return Buffer.concat(
    parts.map((p) =>
      typeof p === 'number' ? Buffer.from([p]) : typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p),
    ),
  );
}
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const u64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };

function parse(buf: Buffer) {
  return parseVerificationBin(buf, 'test.bin');
}

function expectError(buf: Buffer, pattern: RegExp) {
  assert.throws(() => parse(buf), (e: unknown) => e instanceof AttfcError && pattern.test(e.message) && !e.message.includes('\n'));
}

test('writer output is byte-for-byte what Python 2 pickle.dumps((bins, issame), 2) gives', () => {
  const pairs = [{ a: Buffer.from('ab'), b: Buffer.from('c'), same: true }];
  const expected = bytes(
    0x80, 0x02, //                    PROTO 2
    0x5d, 0x71, 0x00, //              EMPTY_LIST, BINPUT 0     (bins)
    0x28, //                          MARK
    0x55, 0x02, 'ab', 0x71, 0x01, //  SHORT_BINSTRING 'ab', BINPUT 1
    0x55, 0x01, 'c', 0x71, 0x02, //   SHORT_BINSTRING 'c', BINPUT 2
    0x65, //                          APPENDS
    0x5d, 0x71, 0x03, //              EMPTY_LIST, BINPUT 3     (issame_list)
    0x88, 0x61, //                    NEWTRUE, APPEND          (a batch of one item uses APPEND)
    0x86, 0x71, 0x04, //              TUPLE2, BINPUT 4
    0x2e, //                          STOP
  );
  assert.deepEqual(Buffer.concat(verificationBinChunks(pairs)), expected);
});

test('writer: BINSTRING for >= 256 bytes, LONG_BINPUT past memo 255, APPENDS batches of 1000', () => {
  const rng = new Rng(7);
  const sizes = [0, 1, 255, 256, 1000];
  const pairs = Array.from({ length: 1001 }, (_, i) => ({
    a: Buffer.from(Array.from({ length: sizes[i % 5] }, () => rng.int(256))),
    b: Buffer.from(Array.from({ length: sizes[(i + 2) % 5] }, () => rng.int(256))),
    same: rng.next() < 0.5,
  }));
  const buf = Buffer.concat(verificationBinChunks(pairs));
  // image 3 (256 bytes) is written as BINSTRING 'T' + u32 length
  assert.ok(buf.includes(bytes(0x54, u32(256))));
  // memo 256 (image 256) needs LONG_BINPUT 'r' + u32
  assert.ok(buf.includes(bytes(0x72, u32(256))));
  // 2002 images: MARK .. APPENDS twice (1000 + 1000), then MARK .. APPENDS for the last 2;
  // 1001 labels: one batch of 1000 then a single NEWTRUE/NEWFALSE + APPEND before TUPLE2
  assert.equal(buf[buf.length - 1], 0x2e);
  // ... <bool> APPEND TUPLE2 LONG_BINPUT(5 bytes: memo 0 bins, 1..2002 images, 2003 labels, 2004 the tuple) STOP
  assert.deepEqual([...buf.subarray(buf.length - 8)], [0x61, 0x86, 0x72, ...u32(2004), 0x2e]);
  const set = parse(buf);
  assert.equal(set.images.length, 2002);
  assert.deepEqual(set.issame, pairs.map((p) => p.same));
  pairs.forEach((p, i) => {
    assert.ok(set.images[2 * i].equals(p.a));
    assert.ok(set.images[2 * i + 1].equals(p.b));
  });
});

test('writeVerificationBin writes atomically and reads back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'attfc-bin-'));
  const path = join(dir, 'synth_val.bin');
  const pairs = [
    { a: Buffer.from([1, 2, 3]), b: Buffer.from([4]), same: false },
    { a: Buffer.from([5]), b: Buffer.from([6, 7]), same: true },
  ];
  writeVerificationBin(path, pairs);
  assert.deepEqual(readdirSync(dir), ['synth_val.bin']);
  const set = readVerificationBin(path);
  assert.equal(set.name, 'synth_val');
  assert.deepEqual(set.issame, [false, true]);
  assert.deepEqual(set.images.map((b) => [...b]), [[1, 2, 3], [4], [5], [6, 7]]);
});

test('Python 3 protocol 3: SHORT_BINBYTES and BINBYTES', () => {
  const buf = bytes(
    0x80, 0x03, //                              PROTO 3
    0x5d, 0x71, 0x00, //                        EMPTY_LIST, BINPUT 0
    0x28, //                                    MARK
    0x43, 0x02, 0xff, 0xd8, 0x71, 0x01, //      SHORT_BINBYTES b'\xff\xd8', BINPUT 1
    0x42, u32(3), 'abc', 0x71, 0x02, //         BINBYTES (u32 length) b'abc', BINPUT 2
    0x65, //                                    APPENDS
    0x5d, 0x71, 0x03, 0x88, 0x61, //            EMPTY_LIST, BINPUT 3, NEWTRUE, APPEND
    0x86, 0x71, 0x04, 0x2e, //                  TUPLE2, BINPUT 4, STOP
  );
  const set = parse(buf);
  assert.deepEqual(set.images.map((b) => b.toString('latin1')), ['\xff\xd8', 'abc']);
  assert.deepEqual(set.issame, [true]);
});

test('Python 3 protocol 4: FRAME, BINBYTES8, MEMOIZE and a BINGET back-reference', () => {
  const body = bytes(
    0x5d, 0x94, //                              EMPTY_LIST, MEMOIZE (memo 0)
    0x28, //                                    MARK
    0x8e, u64(4), 0xde, 0xad, 0xbe, 0xef, //    BINBYTES8 (u64 length)
    0x94, //                                    MEMOIZE (memo 1)
    0x68, 0x01, //                              BINGET 1: the same bytes object again
    0x65, //                                    APPENDS
    0x5d, 0x94, 0x89, 0x61, //                  EMPTY_LIST, MEMOIZE, NEWFALSE, APPEND
    0x86, 0x94, 0x2e, //                        TUPLE2, MEMOIZE, STOP
  );
  const buf = bytes(0x80, 0x04, 0x95, u64(body.length), body); // PROTO 4, FRAME <length of the rest>
  const set = parse(buf);
  assert.deepEqual(set.images.map((b) => [...b]), [[0xde, 0xad, 0xbe, 0xef], [0xde, 0xad, 0xbe, 0xef]]);
  assert.deepEqual(set.issame, [false]);
});

test("Python 3 protocol 2: bytes as _codecs.encode(<latin-1 text>, 'latin1') with GLOBAL + REDUCE", () => {
  const text = Buffer.from('\u00ff\u00d8', 'utf8'); // latin-1 text of b'\xff\xd8' as BINUNICODE (UTF-8): c3 bf c3 98
  const buf = bytes(
    0x80, 0x02, //                                         PROTO 2
    0x5d, 0x71, 0x00, 0x28, //                             EMPTY_LIST, BINPUT 0, MARK
    0x63, '_codecs\nencode\n', 0x71, 0x01, //              GLOBAL '_codecs encode', BINPUT 1
    0x58, u32(text.length), text, 0x71, 0x02, //           BINUNICODE 'ÿØ', BINPUT 2
    0x58, u32(6), 'latin1', 0x71, 0x03, //                 BINUNICODE 'latin1', BINPUT 3
    0x86, 0x71, 0x04, 0x52, 0x71, 0x05, //                 TUPLE2, BINPUT, REDUCE -> b'\xff\xd8', BINPUT
    0x68, 0x01, //                                         BINGET 1 (_codecs.encode again)
    0x58, u32(1), 'z', 0x71, 0x06, //                      BINUNICODE 'z'
    0x68, 0x03, 0x86, 0x71, 0x07, 0x52, 0x71, 0x08, //     BINGET 3 ('latin1'), TUPLE2, REDUCE -> b'z'
    0x65, //                                               APPENDS
    0x5d, 0x71, 0x09, 0x88, 0x61, //                       [True]
    0x86, 0x71, 0x0a, 0x2e, //                             TUPLE2, BINPUT, STOP
  );
  const set = parse(buf);
  assert.deepEqual(set.images.map((b) => [...b]), [[0xff, 0xd8], [0x7a]]);
  assert.deepEqual(set.issame, [true]);
});

test('numpy uint8 arrays: numpy._core.multiarray._reconstruct + BUILD (MARK ... TUPLE state)', () => {
  const dtypeU1 = bytes(
    0x63, 'numpy\ndtype\n', //                     GLOBAL 'numpy dtype'
    0x58, u32(2), 'u1', 0x89, 0x88, 0x87, 0x52, // BINUNICODE 'u1', NEWFALSE, NEWTRUE, TUPLE3, REDUCE -> dtype('uint8')
    0x28, 0x4b, 0x03, 0x58, u32(1), '|', //        MARK, 3, '|'           (dtype state tuple)
    0x4e, 0x4e, 0x4e, //                           None, None, None
    0x4a, u32(0xffffffff), 0x4a, u32(0xffffffff), // BININT -1, BININT -1
    0x4b, 0x00, 0x74, 0x62, //                     0, TUPLE, BUILD
  );
  const array = (shape: number[], data: number[]) =>
    bytes(
      0x63, 'numpy._core.multiarray\n_reconstruct\n', // GLOBAL (numpy 2 spelling)
      0x63, 'numpy\nndarray\n', //                      GLOBAL 'numpy ndarray'
      0x4b, 0x00, 0x85, //                              (0,)  BININT1 0, TUPLE1
      0x43, 0x01, 'b', //                               SHORT_BINBYTES b'b'
      0x87, 0x52, //                                    TUPLE3, REDUCE -> empty ndarray
      0x28, 0x4b, 0x01, //                              MARK, version 1     (array state tuple)
      0x28, ...shape.map((d) => [0x4b, d]).flat(), 0x74, // shape tuple
      dtypeU1, //                                       dtype('uint8')
      0x89, //                                          NEWFALSE: C order
      0x43, data.length, data, //                       SHORT_BINBYTES raw data
      0x74, 0x62, //                                    TUPLE, BUILD
    );
  const buf = bytes(
    0x80, 0x03, 0x5d, 0x28, //        PROTO 3, EMPTY_LIST, MARK
    array([3], [0xff, 0xd8, 0xff]), //  np.frombuffer(jpeg, np.uint8)
    array([2, 1], [0x01, 0x02]), //     cv2.imencode's [N, 1] array
    0x65, //                            APPENDS
    0x5d, 0x89, 0x61, //                [False]
    0x86, 0x2e, //                      TUPLE2, STOP
  );
  const set = parse(buf);
  assert.deepEqual(set.images.map((b) => [...b]), [[0xff, 0xd8, 0xff], [1, 2]]);
  assert.deepEqual(set.issame, [false]);
  // a decoded [H, W, 3] pixel array is not an encoded image
  const rgb = Array.from({ length: 12 }, (_, i) => i);
  const pixels = bytes(0x80, 0x03, 0x5d, 0x28, array([2, 2, 3], rgb), array([1], [9]), 0x65, 0x5d, 0x89, 0x61, 0x86, 0x2e);
  expectError(pixels, /test\.bin: image 0 is a numpy array of shape \[2,2,3\], expected a 1-D uint8 array/);
});

test('malformed files give one-line errors naming the file, opcode and offset', () => {
  const good = Buffer.concat(
    verificationBinChunks([
      { a: Buffer.from('ab'), b: Buffer.from('c'), same: true },
      { a: Buffer.from('d'), b: Buffer.from('e'), same: false },
    ]),
  );
  // truncated in the middle of SHORT_BINSTRING 'ab' (opcode at byte 6, data from byte 8)
  expectError(good.subarray(0, 9), /^test\.bin: truncated: opcode 0x55 \(SHORT_BINSTRING\) at byte 6 needs 2 more bytes at byte 8 but the file has 9 bytes/);
  // truncated before STOP
  expectError(good.subarray(0, good.length - 1), /test\.bin: truncated: the pickle ends at byte \d+ without a STOP opcode/);
  // wrong opcode: EMPTY_DICT where the list should start
  const dict = Buffer.from(good);
  dict[2] = 0x7d;
  expectError(dict, /^test\.bin: unsupported pickle opcode \(opcode 0x7d \(EMPTY_DICT\) at byte 2\)$/);
  // an unknown byte
  const junk = Buffer.from(good);
  junk[2] = 0xff;
  expectError(junk, /opcode 0xff \(unknown opcode\) at byte 2/);
  // an arbitrary callable is never loaded
  expectError(bytes(0x80, 0x02, 0x63, 'os\nsystem\n'), /unsupported global os\.system \(opcode 0x63 \(GLOBAL\) at byte 2\)/);
  // protocol 6 does not exist
  expectError(bytes(0x80, 0x06), /pickle protocol 6 is not supported/);
  // an odd number of images: 3 images, 1 label
  const odd = bytes(0x80, 0x02, 0x5d, 0x28, 0x55, 1, 'a', 0x55, 1, 'b', 0x55, 1, 'c', 0x65, 0x5d, 0x88, 0x61, 0x86, 0x2e);
  expectError(odd, /^test\.bin: odd number of images \(3\); pairs need 2 images each$/);
  // 4 images but 1 label
  const mismatch = bytes(0x80, 0x02, 0x5d, 0x28, 0x55, 1, 'a', 0x55, 1, 'b', 0x55, 1, 'c', 0x55, 1, 'd', 0x65, 0x5d, 0x88, 0x61, 0x86, 0x2e);
  expectError(mismatch, /^test\.bin: pair count mismatch: 4 images make 2 pairs but issame_list has 1 labels$/);
  // not a (bins, issame) pair
  expectError(bytes(0x80, 0x02, 0x5d, 0x2e), /expected a pickled \(bins, issame_list\) pair, got a list of 0/);
  // a label that is not a boolean
  expectError(bytes(0x80, 0x02, 0x5d, 0x28, 0x55, 1, 'a', 0x55, 1, 'b', 0x65, 0x5d, 0x4b, 7, 0x61, 0x86, 0x2e), /issame_list\[0\] is number 7, expected a boolean/);
});

test('readVerificationBin: a missing file is a one-line user error', () => {
  assert.throws(() => readVerificationBin('/nonexistent/lfw.bin'), /^AttfcError: \/nonexistent\/lfw\.bin: cannot read \(ENOENT\)$/);
  const dir = mkdtempSync(join(tmpdir(), 'attfc-bin-'));
  writeFileSync(join(dir, 'empty.bin'), '');
  assert.throws(() => readVerificationBin(join(dir, 'empty.bin')), /empty\.bin: truncated: the pickle ends at byte 0 without a STOP opcode/);
  assert.equal(readFileSync(join(dir, 'empty.bin')).length, 0);
});
