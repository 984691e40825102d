// Image-folder datasets, checkImage, and `pack` (folder -> insightface RecordIO).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { AttfcError } from '../../src/errors.js';
import { checkImage, openDataset } from '../../src/data/dataset.js';
import { ImageFolderDataset, scanImageFolder } from '../../src/data/imageFolder.js';
import { pack } from '../../src/data/pack.js';

const tmp = mkdtempSync(join(tmpdir(), 'attfc-folder-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => mkdtempSync(join(tmp, `d${dirCount++}-`));

const jpeg = (r: number, size = 16): Promise<Buffer> =>
  sharp({ create: { width: size, height: size, channels: 3, background: { r, g: 40, b: 90 } } }).jpeg().toBuffer();
const png = (r: number, size = 16): Promise<Buffer> =>
  sharp({ create: { width: size, height: size, channels: 3, background: { r, g: 200, b: 10 } } }).png().toBuffer();

async function expectAttfcAsync(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AttfcError, `expected AttfcError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'message must be one line');
    for (const pattern of patterns) assert.match(e.message, pattern);
    return true;
  });
}

function expectAttfc(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttfcError, `expected AttfcError, got ${String(e)}`);
    for (const pattern of patterns) assert.match(e.message, pattern);
    return true;
  });
}

/** root/<name>/<file> for each entry. */
function writeTree(root: string, tree: Record<string, Record<string, Buffer>>): void {
  for (const [folder, files] of Object.entries(tree)) {
    mkdirSync(join(root, folder), { recursive: true });
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(root, folder, name), bytes);
  }
}

test('image folder: identities in sorted folder order, images sorted, non-images and dot-folders ignored', async () => {
  const root = freshDir();
  const [a, b, c, d] = await Promise.all([jpeg(10), jpeg(20), png(30), jpeg(40)]);
  writeTree(root, {
    '0_0_0000010': { '2.jpg': a!, '10.JPEG': b!, 'notes.txt': Buffer.from('x') },
    '0_0_0000002': { 'b.png': c!, 'a.jpg': d! },
    '.cache': { 'z.jpg': a! },
  });
  writeFileSync(join(root, 'README'), 'not an identity');
  const ds = openDataset(root);
  assert.ok(ds instanceof ImageFolderDataset);
  assert.equal(ds.format, 'folder');
  assert.equal(ds.numIdentities, 2);
  assert.equal(ds.numImages, 4);
  assert.equal(ds.identityName(0), '0_0_0000002');
  assert.deepEqual([0, 1, 2, 3].map((i) => ds.relativePath(i)), ['0_0_0000002/a.jpg', '0_0_0000002/b.png', '0_0_0000010/10.JPEG', '0_0_0000010/2.jpg']);
  assert.deepEqual([0, 1, 2, 3].map((i) => ds.label(i)), [0, 0, 1, 1]);
  assert.deepEqual(Array.from(ds.identityImages(1)), [2, 3]);
  assert.deepEqual(ds.readImage(1), c);
  assert.equal(ds.quality(1), undefined);
  assert.equal(ds.imageSize, undefined);
  assert.equal(ds.describe(3), join(root, '0_0_0000010', '2.jpg'));
  ds.close();
});

test('image folder errors: empty identity folder, no identity folders, missing path, unreadable image', () => {
  const root = freshDir();
  mkdirSync(join(root, 'id1'));
  expectAttfc(() => openDataset(root), /id1: identity folder has no \.jpg\/\.jpeg\/\.png images/);
  const errors: string[] = [];
  scanImageFolder(root, (m) => errors.push(m));
  assert.equal(errors.length, 1);
  const bare = freshDir();
  expectAttfc(() => ImageFolderDataset.open(bare), /no identity folders found/);
  expectAttfc(() => openDataset(join(bare, 'missing')), /missing: no such file or directory/);
  writeTree(bare, { a: { '1.jpg': Buffer.from('x') } });
  const ds = openDataset(bare);
  rmSync(join(bare, 'a', '1.jpg'));
  expectAttfc(() => ds.readImage(0), /a\/1\.jpg: cannot read image \(ENOENT\)/);
});

test('checkImage decodes fully: garbage, empty and truncated JPEGs are AttfcErrors naming the place', async () => {
  const good = await jpeg(50, 32);
  assert.deepEqual(await checkImage(good, 'ok'), { width: 32, height: 32, format: 'jpeg' });
  await expectAttfcAsync(checkImage(Buffer.from('not an image at all'), 'train.rec key 17'), /^train\.rec key 17: cannot decode image/);
  await expectAttfcAsync(checkImage(Buffer.alloc(0), 'root/a/1.jpg'), /^root\/a\/1\.jpg: image is empty/);
  await expectAttfcAsync(checkImage(good.subarray(0, good.length - 40), 'root/a/2.jpg'), /^root\/a\/2\.jpg: cannot decode image/);
});

test('pack: JPEG copied as-is, PNG re-encoded, readable as an insightface dataset', async () => {
  const root = freshDir();
  const [a, b, c] = await Promise.all([jpeg(10, 24), png(90, 24), jpeg(200, 20)]);
  writeTree(root, { alice: { '1.jpg': a!, '2.png': b! }, bob: { '1.jpg': c! } });
  const out = join(freshDir(), 'packed');
  const progress: number[] = [];
  const report = await pack(root, out, { onProgress: (done) => progress.push(done) });
  assert.deepEqual(report, { out, identities: 2, images: 3, reencoded: 1, imageSize: { width: 24, height: 24 }, otherSizes: 1 });
  assert.deepEqual(progress, [1, 2, 3]);
  assert.deepEqual(readdirSync(out).sort(), ['property', 'train.idx', 'train.rec']);
  assert.equal(readFileSync(join(out, 'property'), 'utf8'), '2,24,24\n');
  const ds = openDataset(out);
  assert.deepEqual([0, 1, 2].map((i) => ds.label(i)), [0, 0, 1]);
  assert.deepEqual(await ds.readImage(0), a);
  assert.deepEqual(await ds.readImage(2), c);
  const reencoded = await ds.readImage(1);
  assert.deepEqual([...reencoded.subarray(0, 3)], [0xff, 0xd8, 0xff]);
  const meta = await sharp(reencoded).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 24, 24]);
  ds.close();
  await expectAttfcAsync(pack(root, out), /train\.rec: already exists/);
});

test('pack: an undecodable image aborts without leaving files', async () => {
  const root = freshDir();
  // More good images than one batch, so the writer has started before the bad one is met.
  const good = await jpeg(1);
  const many = Object.fromEntries(Array.from({ length: 10 }, (_, k) => [`${k}.jpg`, good]));
  writeTree(root, { a: many, b: { '1.jpg': Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]) } });
  const out = freshDir();
  await expectAttfcAsync(pack(root, out), /b\/1\.jpg: cannot decode image/);
  assert.deepEqual(readdirSync(out), []);
});
