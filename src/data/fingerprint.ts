// A data set's fingerprint, recorded in checkpoints: its size and a hash of what defines its order and
// labels (a RecordIO set's index and `property`; an image folder's file list; the on-demand synthetic
// source's generator version and the options that decide its training images). A resume compares it
// with the data it is given, since a checkpoint's sampler position means nothing on other data.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { locateDataset, type FaceDataset } from './dataset.js';
import { ImageFolderDataset } from './imageFolder.js';
import { SyntheticDataset, trainingImageOptions } from './synthetic/source.js';

export interface DatasetFingerprint {
  /** The path the set was given as (for messages; a moved set keeps its fingerprint). */
  source: string;
  images: number;
  identities: number;
  /** SHA-256 (hex) per part: `train.idx` (the index file's name), `property`, `file list`, or `synthetic images`. */
  hashes: Record<string, string>;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** SHA-256 of a file read in slices (an index of a large set runs to hundreds of MB). */
function sha256File(file: string): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 24);
  const fd = openSync(file, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

export function datasetFingerprint(path: string, dataset: FaceDataset): DatasetFingerprint {
  const hashes: Record<string, string> = {};
  const loc = locateDataset(path);
  if (loc.format === 'recordio') {
    hashes[basename(loc.idx)] = sha256File(loc.idx);
    if (loc.property) hashes.property = sha256(readFileSync(loc.property, 'utf8').trim());
  } else if (dataset instanceof SyntheticDataset) {
    hashes['synthetic images'] = sha256(JSON.stringify(trainingImageOptions(dataset.options)));
  } else if (dataset instanceof ImageFolderDataset) {
    const h = createHash('sha256');
    for (let i = 0; i < dataset.numImages; i++) h.update(`${dataset.relativePath(i)}\n`);
    hashes['file list'] = h.digest('hex');
  }
  return { source: path, images: dataset.numImages, identities: dataset.numIdentities, hashes };
}

/** What differs between two fingerprints ("96 images, not 120; train.idx"), or '' when they agree. */
export function fingerprintDifferences(saved: DatasetFingerprint, now: DatasetFingerprint): string {
  const out: string[] = [];
  if (saved.images !== now.images) out.push(`${now.images} images, not ${saved.images}`);
  if (saved.identities !== now.identities) out.push(`${now.identities} identities, not ${saved.identities}`);
  for (const k of new Set([...Object.keys(saved.hashes), ...Object.keys(now.hashes)])) if (saved.hashes[k] !== now.hashes[k]) out.push(k);
  return out.join('; ');
}
