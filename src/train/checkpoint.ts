// Checkpoints: one folder per step holding checkpoint.json (everything JSON-able) and tensors.bin (every
// array, concatenated), each with a SHA-256 checksum in checkpoint.json that loading verifies. Written
// into a temporary folder, fsynced, then renamed; a checkpoint of the same step is moved aside first and
// removed only once the new one is in place. A crash at any moment leaves either the previous
// checkpoints or a complete new one, never a half-written one: recoverCheckpoints() (run at the start,
// under the run folder's lock) puts back a checkpoint that was moved aside and removes temporary folders.
import { createHash } from 'node:crypto';
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
  /** 1: no checksums (still loaded); 2: checksums of both files. */
  version: 1 | 2;
  step: number;
  json: Record<string, unknown>;
  arrays: { name: string; dtype: 'float32' | 'int32'; length: number; offset: number }[];
  /** SHA-256 (hex) of tensors.bin, and of checkpoint.json serialised without its own entry. */
  checksums?: { 'tensors.bin': string; 'checkpoint.json'?: string };
}

const DIR_RE = /^ckpt-(\d{9})$/;
/** A checkpoint being written, or one moved aside while its step is rewritten (`.old-`). */
const TMP_RE = /^\.tmp-ckpt-\d{9}-\d+$/;
const OLD_RE = /^\.old-(ckpt-\d{9})-\d+$/;
const SLICE = 1 << 30; // a single read or write is limited to 2 GiB

export function checkpointDirName(step: number): string {
  return `ckpt-${String(step).padStart(9, '0')}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The checksum of checkpoint.json: its JSON without the entry for itself. */
function manifestChecksum(m: Manifest): string {
  return sha256(JSON.stringify({ ...m, checksums: { 'tensors.bin': m.checksums?.['tensors.bin'] } }));
}

function writeFileSynced(file: string, write: (fd: number) => void): void {
  const fd = openSync(file, 'w');
  try {
    write(fd);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a checkpoint under root/ckpt-<step> atomically and keeps the newest `keep` (always including
 * this one). Returns its path.
 */
export function saveCheckpoint(root: string, data: CheckpointData, keep: number): string {
  mkdirSync(root, { recursive: true });
  const name = checkpointDirName(data.step);
  const final = path.join(root, name);
  const tmp = path.join(root, `.tmp-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const manifest: Manifest = { format: 'attfc-checkpoint', version: 2, step: data.step, json: data.json, arrays: [] };
  const hash = createHash('sha256');
  writeFileSynced(path.join(tmp, 'tensors.bin'), (fd) => {
    let offset = 0;
    for (const [arrayName, arr] of Object.entries(data.arrays)) {
      const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
      for (let p = 0; p < bytes.length; p += SLICE) writeSync(fd, bytes, p, Math.min(SLICE, bytes.length - p));
      hash.update(bytes);
      manifest.arrays.push({ name: arrayName, dtype: arr instanceof Int32Array ? 'int32' : 'float32', length: arr.length, offset });
      offset += bytes.length;
    }
  });
  manifest.checksums = { 'tensors.bin': hash.digest('hex') };
  manifest.checksums['checkpoint.json'] = manifestChecksum(manifest);
  writeFileSynced(path.join(tmp, 'checkpoint.json'), (fd) => writeSync(fd, JSON.stringify(manifest)));
  // the same step again (a resume that replays it): move the old one aside, never delete it first
  const aside = path.join(root, `.old-${name}-${process.pid}`);
  const replacing = existsSync(final);
  if (replacing) renameSync(final, aside);
  renameSync(tmp, final);
  fsyncDir(root);
  if (replacing) rmSync(aside, { recursive: true, force: true });
  const others = listCheckpoints(root).filter((p) => p !== final);
  for (const old of others.slice(0, Math.max(0, others.length - (keep - 1)))) rmSync(old, { recursive: true, force: true });
  return final;
}

/**
 * Repairs what a killed writer left in `root`: a checkpoint moved aside for a rewrite goes back if the
 * new one never arrived, and temporary and moved-aside folders are removed. Call only while holding
 * the run folder's lock (another live writer's temporary folder would look the same).
 */
export function recoverCheckpoints(root: string): void {
  if (!existsSync(root)) return;
  for (const n of readdirSync(root)) {
    const p = path.join(root, n);
    const old = OLD_RE.exec(n);
    if (old) {
      const final = path.join(root, old[1]);
      if (!existsSync(path.join(final, 'checkpoint.json'))) {
        rmSync(final, { recursive: true, force: true });
        renameSync(p, final);
      } else rmSync(p, { recursive: true, force: true });
    } else if (TMP_RE.test(n)) rmSync(p, { recursive: true, force: true });
  }
}

/** Complete checkpoints under root, oldest first. */
export function listCheckpoints(root: string): string[] {
  if (!existsSync(root) || !statSync(root).isDirectory()) return [];
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
  if (!existsSync(p)) throw new AttfcError(`--resume ${p}: no such folder; expected a run folder or a checkpoint folder (<run>/checkpoints/ckpt-<step>)`);
  if (!statSync(p).isDirectory()) throw new AttfcError(`--resume ${p}: is a file; expected a run folder or a checkpoint folder (<run>/checkpoints/ckpt-<step>)`);
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
  if (manifest === null || typeof manifest !== 'object' || manifest.format !== 'attfc-checkpoint')
    throw new AttfcError(`${mpath}: format is ${JSON.stringify(manifest?.format)}, expected "attfc-checkpoint"`);
  if (manifest.version !== 1 && manifest.version !== 2) throw new AttfcError(`${mpath}: checkpoint version ${JSON.stringify(manifest.version)} is not one this attfc reads (1 or 2)`);
  if (!Array.isArray(manifest.arrays) || !Number.isInteger(manifest.step)) throw new AttfcError(`${mpath}: expected "step" and "arrays" fields`);
  const sums = manifest.version >= 2 ? manifest.checksums : undefined;
  if (manifest.version >= 2 && (!sums || sums['checkpoint.json'] !== manifestChecksum(manifest)))
    throw new AttfcError(`${mpath}: checksum mismatch (the file was changed or damaged after it was written); resume from another checkpoint`);
  const bin = path.join(dir, 'tensors.bin');
  if (!existsSync(bin)) throw new AttfcError(`${bin}: missing (the checkpoint is incomplete); resume from another checkpoint`);
  const size = statSync(bin).size;
  const fd = openSync(bin, 'r');
  const arrays: Record<string, ArrayEntry> = {};
  const hash = createHash('sha256');
  let covered = 0;
  try {
    for (const a of manifest.arrays) {
      const bytes = a.length * 4;
      if (a.offset + bytes > size) throw new AttfcError(`${bin}: array ${a.name} at offset ${a.offset} runs past the end (${size} bytes)`);
      const arr = a.dtype === 'int32' ? new Int32Array(a.length) : new Float32Array(a.length);
      const view = new Uint8Array(arr.buffer);
      for (let p = 0; p < bytes; p += SLICE) readSync(fd, view, p, Math.min(SLICE, bytes - p), a.offset + p);
      hash.update(view);
      covered += bytes;
      arrays[a.name] = arr;
    }
  } finally {
    closeSync(fd);
  }
  if (sums && (covered !== size || hash.digest('hex') !== sums['tensors.bin']))
    throw new AttfcError(`${bin}: checksum mismatch (the file was changed or damaged after it was written); resume from another checkpoint`);
  return { step: manifest.step, json: manifest.json, arrays };
}
