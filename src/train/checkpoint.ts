// Checkpoints: one folder per step holding checkpoint.json (everything JSON-able) and tensors.bin (every
// array, concatenated). Written into a temporary folder, fsynced, then renamed: a crash at any moment
// leaves either the previous checkpoints or a complete new one, never a half-written one.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { AttfcError } from '../errors.js';

export type ArrayEntry = Float32Array | Int32Array;

export interface CheckpointData {
  step: number;
  json: Record<string, unknown>;
  arrays: Record<string, ArrayEntry>;
}

interface Manifest {
  format: 'attfc-checkpoint';
  version: 1;
  step: number;
  json: Record<string, unknown>;
  arrays: { name: string; dtype: 'float32' | 'int32'; length: number; offset: number }[];
}

const DIR_RE = /^ckpt-(\d{9})$/;

export function checkpointDirName(step: number): string {
  return `ckpt-${String(step).padStart(9, '0')}`;
}

/** Writes a checkpoint under root/ckpt-<step> atomically and keeps only the newest `keep`. Returns its path. */
export function saveCheckpoint(root: string, data: CheckpointData, keep: number): string {
  mkdirSync(root, { recursive: true });
  const final = path.join(root, checkpointDirName(data.step));
  const tmp = path.join(root, `.tmp-${checkpointDirName(data.step)}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const manifest: Manifest = { format: 'attfc-checkpoint', version: 1, step: data.step, json: data.json, arrays: [] };
  const fd = openSync(path.join(tmp, 'tensors.bin'), 'w');
  try {
    let offset = 0;
    for (const [name, arr] of Object.entries(data.arrays)) {
      const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
      // write in slices: a single write is limited to 2 GiB
      for (let p = 0; p < bytes.length; p += 1 << 30) writeSync(fd, bytes, p, Math.min(1 << 30, bytes.length - p));
      manifest.arrays.push({ name, dtype: arr instanceof Int32Array ? 'int32' : 'float32', length: arr.length, offset });
      offset += bytes.length;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const mfd = openSync(path.join(tmp, 'checkpoint.json'), 'w');
  try {
    writeSync(mfd, JSON.stringify(manifest));
    fsyncSync(mfd);
  } finally {
    closeSync(mfd);
  }
  if (existsSync(final)) rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  const dfd = openSync(root, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
  for (const old of listCheckpoints(root).slice(0, -keep)) rmSync(old, { recursive: true, force: true });
  return final;
}

/** Complete checkpoints under root, oldest first. */
export function listCheckpoints(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => DIR_RE.test(n) && existsSync(path.join(root, n, 'checkpoint.json')))
    .sort()
    .map((n) => path.join(root, n));
}

/**
 * Resolves what the user passed to --resume: a checkpoint folder, a run's checkpoints folder, or the
 * run's output folder (its newest checkpoint).
 */
export function resolveCheckpoint(p: string): string {
  if (existsSync(path.join(p, 'checkpoint.json'))) return p;
  for (const root of [p, path.join(p, 'checkpoints')]) {
    const all = listCheckpoints(root);
    if (all.length) return all[all.length - 1];
  }
  throw new AttfcError(`--resume ${p}: no checkpoint found (expected ${p}/checkpoints/ckpt-<step>/checkpoint.json)`);
}

export function loadCheckpoint(dir: string): CheckpointData {
  const mpath = path.join(dir, 'checkpoint.json');
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(mpath, 'utf8')) as Manifest;
  } catch (e) {
    throw new AttfcError(`${mpath}: not a readable checkpoint (${(e as Error).message.split('\n')[0]})`);
  }
  if (manifest.format !== 'attfc-checkpoint') throw new AttfcError(`${mpath}: format is ${JSON.stringify(manifest.format)}, expected "attfc-checkpoint"`);
  const bin = path.join(dir, 'tensors.bin');
  const size = statSync(bin).size;
  const fd = openSync(bin, 'r');
  const arrays: Record<string, ArrayEntry> = {};
  try {
    for (const a of manifest.arrays) {
      const bytes = a.length * 4;
      if (a.offset + bytes > size) throw new AttfcError(`${bin}: array ${a.name} at offset ${a.offset} runs past the end (${size} bytes)`);
      const arr = a.dtype === 'int32' ? new Int32Array(a.length) : new Float32Array(a.length);
      const view = new Uint8Array(arr.buffer);
      for (let p = 0; p < bytes; p += 1 << 30) readSync(fd, view, p, Math.min(1 << 30, bytes - p), a.offset + p);
      arrays[a.name] = arr;
    }
  } finally {
    closeSync(fd);
  }
  return { step: manifest.step, json: manifest.json, arrays };
}
