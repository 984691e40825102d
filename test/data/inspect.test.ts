// `inspect` statistics and error collection (several problems reported at once), and the
// `data inspect` / `data pack` commands run in-process through commander.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';
import { inspect } from '../../src/data/inspect.js';
import { RecordIOFile } from '../../src/data/recordio.js';
import { InsightfaceRecWriter, RecordIOWriter } from '../../src/data/recordioWriter.js';
import { registerDataCommands } from '../../src/cli/commands/data.js';

const tmp = mkdtempSync(join(tmpdir(), 'attfc-inspect-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => mkdtempSync(join(tmp, `d${dirCount++}-`));

const jpeg = (r: number): Promise<Buffer> =>
  sharp({ create: { width: 12, height: 12, channels: 3, background: { r, g: 0, b: 0 } } }).jpeg().toBuffer();

/** Identities with `counts` images each, all decodable JPEGs, quality = k/10. */
async function writeDataset(dir: string, counts: number[]): Promise<void> {
  const img = await jpeg(120);
  const w = new InsightfaceRecWriter(dir, { width: 12, height: 12 });
  counts.forEach((n, id) => {
    for (let k = 0; k < n; k++) w.add(id, img, [k / 10]);
  });
  w.close();
}

test('clean RecordIO dataset: statistics, image size from property, no errors, labels listed', async () => {
  const dir = freshDir();
  await writeDataset(dir, [3, 1, 5, 2]);
  const r = await inspect(dir, { sample: Infinity, labels: true });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(
    { format: r.format, layout: r.layout, identities: r.identities, images: r.images, min: r.minPerIdentity, median: r.medianPerIdentity, max: r.maxPerIdentity },
    { format: 'recordio', layout: 'insightface', identities: 4, images: 11, min: 1, median: 2.5, max: 5 },
  );
  assert.deepEqual(r.imageSize, { width: 12, height: 12 });
  assert.equal(r.decodeChecked, 11);
  assert.deepEqual(r.labels!.slice(0, 5), [
    { key: '1', label: 0 },
    { key: '2', label: 0 },
    { key: '3', label: 0 },
    { key: '4', label: 1 },
    { key: '5', label: 2 },
  ]);
  assert.equal((await inspect(dir)).labels, undefined);
  assert.equal((await inspect(dir, { sample: 2 })).decodeChecked, 2);
});

test('RecordIO inspect collects every problem: bad idx line, wrong magic, undecodable image, bad label, wrong range', async () => {
  const dir = freshDir();
  const img = await jpeg(60);
  const rec = join(dir, 'train.rec');
  const idx = join(dir, 'train.idx');
  const w = new RecordIOWriter(rec, idx);
  const labels = [0, 0, 1, 1, 7, 1];
  labels.forEach((label, i) => w.writeRecord(i + 1, { label, id: i + 1, payload: i === 2 ? Buffer.from('garbage!') : img }));
  w.writeRecord(7, { labels: [1, 4] });
  w.writeRecord(8, { labels: [4, 6] }); // should end at 7
  w.writeRecord(0, { labels: [7, 9] });
  w.close();
  const f = RecordIOFile.open(rec, idx);
  const bytes = readFileSync(rec);
  bytes.fill(0, f.offsetOf(2), f.offsetOf(2) + 4);
  f.close();
  writeFileSync(rec, bytes);
  writeFileSync(idx, `${readFileSync(idx, 'utf8')}oops\n`);

  const r = await inspect(dir, { sample: Infinity });
  const expected = [
    /train\.idx line 10: expected "key<TAB>offset", got "oops"/,
    /train\.rec key 2 \(offset \d+\): expected RecordIO magic/,
    /train\.rec key 5: label 7 is out of range \(num_classes is 2 from .*train\.rec key 0 \(header record\)\)/,
    /train\.rec key 8 \(identity record 1\): identity ranges end at key 5 but the header record says images run to key 6/,
    /train\.rec key 3: label 1 disagrees with identity record key 7 \(identity 0, image keys \[1, 4\)\)/,
    /train\.rec key 3: cannot decode image/,
  ];
  for (const pattern of expected) assert.ok(r.errors.some((e) => pattern.test(e)), `missing ${pattern} in\n${r.errors.join('\n')}`);
  assert.equal(new Set(r.errors).size, r.errors.length, 'no duplicate messages');
  assert.ok(r.errors.every((e) => !e.includes('\n')));
  assert.equal(r.images, 6);

  const capped = await inspect(dir, { sample: Infinity, maxErrors: 2 });
  assert.equal(capped.errors.length, 3);
  assert.match(capped.errors[2]!, /^\.\.\. and \d+ more errors$/);
});

test('image folder inspect collects empty folders and undecodable images together', async () => {
  const root = freshDir();
  const img = await jpeg(9);
  for (const [folder, files] of Object.entries({ a: ['1.jpg', '2.jpg', '3.jpg'], b: [], c: ['1.jpg'], d: [] })) {
    mkdirSync(join(root, folder));
    for (const f of files) writeFileSync(join(root, folder, f), img);
  }
  writeFileSync(join(root, 'a', '2.jpg'), 'broken');
  const r = await inspect(root, { sample: Infinity, labels: true });
  assert.equal(r.format, 'folder');
  assert.deepEqual([r.identities, r.images, r.minPerIdentity, r.medianPerIdentity, r.maxPerIdentity], [2, 4, 1, 2, 3]);
  assert.deepEqual(r.imageSize, { width: 12, height: 12 });
  assert.equal(r.errors.length, 3);
  assert.match(r.errors[0]!, /b: identity folder has no/);
  assert.match(r.errors[1]!, /d: identity folder has no/);
  assert.match(r.errors[2]!, /a\/2\.jpg: cannot decode image/);
  assert.deepEqual(r.labels![3], { key: 'c/1.jpg', label: 1 });
});

test('inspect on a missing path reports it instead of throwing', async () => {
  const r = await inspect(join(tmp, 'nope'));
  assert.deepEqual([r.format, r.images, r.identities], [null, 0, 0]);
  assert.match(r.errors[0]!, /nope: no such file or directory/);
});

/** Runs `attfc <args>` with only the data commands, capturing output and exit code. */
async function runCli(args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const io = { stdout: '', stderr: '', exitCode: 0 };
  const program = new Command('attfc').exitOverride();
  registerDataCommands(program, {
    stdout: (t) => void (io.stdout += t),
    stderr: (t) => void (io.stderr += t),
    setExitCode: (c) => void (io.exitCode = c),
  });
  await program.parseAsync(args, { from: 'user' });
  return io;
}

test('CLI: data pack then data inspect (human, --json, --labels), exit code 1 on errors', async () => {
  const root = freshDir();
  const img = await jpeg(33);
  for (const [folder, n] of [['x', 2], ['y', 1]] as const) {
    mkdirSync(join(root, folder));
    for (let k = 0; k < n; k++) writeFileSync(join(root, folder, `${k}.jpg`), img);
  }
  const out = join(freshDir(), 'rec');
  const packed = await runCli(['data', 'pack', root, out]);
  assert.match(packed.stdout, /packed 3 images of 2 identities .*property 2,12,12/);

  const human = await runCli(['data', 'inspect', out]);
  assert.equal(human.exitCode, 0);
  assert.match(human.stdout, /RecordIO \(insightface layout\)/);
  assert.match(human.stdout, /identities +2\n +images +3\n +per identity +min 1, median 1\.5, max 2/);
  assert.match(human.stdout, /errors +none/);

  const json = await runCli(['data', 'inspect', out, '--json', '--sample', 'all']);
  const parsed = JSON.parse(json.stdout) as Record<string, unknown>;
  assert.deepEqual(
    { ...parsed, source: undefined },
    { source: undefined, format: 'recordio', layout: 'insightface', identities: 2, images: 3, minPerIdentity: 1, medianPerIdentity: 1.5, maxPerIdentity: 2, imageSize: { width: 12, height: 12 }, decodeChecked: 3, errors: [] },
  );

  const labels = await runCli(['data', 'inspect', out, '--labels']);
  assert.equal(labels.stdout, '1 0\n2 0\n3 1\n');
  assert.match(labels.stderr, /images +3/);

  mkdirSync(join(root, 'z'));
  const bad = await runCli(['data', 'inspect', root]);
  assert.equal(bad.exitCode, 1);
  assert.match(bad.stdout, /errors +1\n.*z: identity folder has no/);
  await assert.rejects(runCli(['data', 'inspect', out, '--sample', 'many']), /expected a non-negative integer or "all"/);
});

test('a missing image key does not shift the labels: each image is compared with its identity by key', async () => {
  const dir = freshDir();
  await writeDataset(dir, [3, 3, 3, 3]); // keys 1..12, identities of 3
  const idx = join(dir, 'train.idx');
  writeFileSync(idx, readFileSync(idx, 'utf8').split('\n').filter((l) => !l.startsWith('2\t')).join('\n'));
  const r = await inspect(dir, { sample: 0 });
  assert.deepEqual(r.errors, [`${idx}: image key 2 is missing (the header record says image keys run 1..12)`]);
});
