// The checkpoint files on their own (no training): atomic replacement of a step, per-file checksums,
// and one-line errors for what a user may hand to --resume.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { AttfcError } from '../../src/errors.js';
import { listCheckpoints, loadCheckpoint, recoverCheckpoints, resolveCheckpoint, saveCheckpoint, type CheckpointData } from '../../src/train/checkpoint.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'attfc-ckpt-'));
const data = (step: number, value: number): CheckpointData => ({
  step,
  json: { note: `value ${value}` },
  arrays: { w: new Float32Array([value, value + 1, value + 2]), n: new Int32Array([step]) },
});

/** Runs `f` with renameSync failing (like a crash at that moment) when it would create `target`. */
function crashingRenameInto(target: string, f: () => void): void {
  const real = fs.renameSync;
  fs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
    if (path.resolve(String(to)) === path.resolve(target)) throw new Error('simulated crash');
    real(from, to);
  }) as typeof fs.renameSync;
  syncBuiltinESMExports();
  try {
    f();
  } finally {
    fs.renameSync = real;
    syncBuiltinESMExports();
  }
}

test('rewriting a step never leaves it without a complete checkpoint, even if the process dies in between', () => {
  const root = tmp();
  const final = saveCheckpoint(root, data(5, 10), 3);
  crashingRenameInto(final, () => assert.throws(() => saveCheckpoint(root, data(5, 20), 3), /simulated crash/));
  recoverCheckpoints(root); // what the next run does first
  assert.deepEqual(listCheckpoints(root), [final]);
  const c = loadCheckpoint(final);
  assert.equal(c.step, 5);
  assert.deepEqual(Array.from(c.arrays.w), [10, 11, 12], 'the complete old checkpoint');
  // and once the rewrite completes, the new one is there and nothing is left over
  saveCheckpoint(root, data(5, 20), 3);
  assert.deepEqual(Array.from(loadCheckpoint(final).arrays.w), [20, 21, 22]);
  assert.deepEqual(fs.readdirSync(root), [path.basename(final)]);
});

test('a temporary folder left by a kill mid-write is removed at the next start', () => {
  const root = tmp();
  saveCheckpoint(root, data(1, 1), 3);
  fs.mkdirSync(path.join(root, '.tmp-ckpt-000000002-4242'));
  writeFileSync(path.join(root, '.tmp-ckpt-000000002-4242', 'tensors.bin'), 'partial');
  recoverCheckpoints(root);
  assert.deepEqual(fs.readdirSync(root), ['ckpt-000000001']);
});

test('a corrupted tensors.bin of the right size is refused by its checksum, naming the file', () => {
  const root = tmp();
  const dir = saveCheckpoint(root, data(3, 1), 3);
  const bin = path.join(dir, 'tensors.bin');
  const bytes = readFileSync(bin);
  bytes[2] ^= 0x40;
  writeFileSync(bin, bytes);
  assert.throws(
    () => loadCheckpoint(dir),
    (e: unknown) => e instanceof AttfcError && /tensors\.bin: checksum mismatch/.test(e.message) && e.message.includes(bin) && !e.message.includes('\n'),
  );
  // checkpoint.json is covered too
  const json = path.join(dir, 'checkpoint.json');
  writeFileSync(bin, readFileSync(bin).map((b, i) => (i === 2 ? b ^ 0x40 : b)));
  writeFileSync(json, readFileSync(json, 'utf8').replace('value 1', 'value 9'));
  assert.throws(() => loadCheckpoint(dir), (e: unknown) => e instanceof AttfcError && /checkpoint\.json: checksum mismatch/.test(e.message));
});

test('what --resume may be handed: a missing tensors.bin, a file, a folder without checkpoints are one-line errors', () => {
  const root = tmp();
  const dir = saveCheckpoint(root, data(2, 1), 3);
  rmSync(path.join(dir, 'tensors.bin'));
  assert.throws(() => loadCheckpoint(dir), (e: unknown) => e instanceof AttfcError && /tensors\.bin: missing/.test(e.message) && !e.message.includes('\n'));
  const file = path.join(root, 'notes.txt');
  writeFileSync(file, 'x');
  assert.throws(() => resolveCheckpoint(file), (e: unknown) => e instanceof AttfcError && /--resume .*notes\.txt: is a file; expected a run folder or a checkpoint folder/.test(e.message));
  assert.throws(() => resolveCheckpoint(path.join(root, 'nope')), (e: unknown) => e instanceof AttfcError && /no such folder/.test(e.message));
  assert.throws(() => resolveCheckpoint(tmp()), (e: unknown) => e instanceof AttfcError && /no checkpoint found/.test(e.message));
});

test('keeping the newest k never deletes the checkpoint just written, even when older-run checkpoints have higher steps', () => {
  const root = tmp();
  saveCheckpoint(root, data(2, 1), 3);
  saveCheckpoint(root, data(4, 1), 3);
  // a resume from step 2 writes step 3 with --keep-checkpoints 1
  const three = saveCheckpoint(root, data(3, 1), 1);
  assert.deepEqual(listCheckpoints(root), [three]);
});
