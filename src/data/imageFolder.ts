// Image-folder datasets: root/<identity>/<image>.(jpg|jpeg|png). Identities are numbered in sorted
// folder order and images sorted within each folder (plain code-unit order, so it never depends on locale).
import { existsSync, readdirSync, readFileSync, statSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { AttfcError } from '../errors.js';
import type { FaceDataset } from './faceDataset.js';

const IMAGE_NAME = /\.(jpe?g|png)$/i;

/** True for file names the image-folder format accepts (.jpg, .jpeg, .png, any case). */
export function isImageFileName(name: string): boolean {
  return IMAGE_NAME.test(name);
}

/** Result of listing an image folder. Image i is `files[i]` (relative to root) of identity `labels[i]`. */
export interface ImageFolderScan {
  root: string;
  /** Folder name of each identity, in identity order. */
  identityNames: string[];
  /** Image paths relative to root, grouped by identity in identity order. */
  files: string[];
  labels: Int32Array;
  /** Identity j owns images starts[j] .. starts[j+1]-1. */
  starts: Int32Array;
}

/**
 * Lists `root`. An empty identity folder or a root without identity folders throws an AttfcError, or,
 * with `onError`, is reported there (empty folders are then skipped and take no identity number).
 */
export function scanImageFolder(root: string, onError?: (message: string) => void): ImageFolderScan {
  if (!existsSync(root)) throw new AttfcError(`${root}: no such directory`);
  if (!statSync(root).isDirectory()) throw new AttfcError(`${root}: expected an image folder (root/<identity>/<image>.jpg|png), found a file`);
  const fail = (msg: string): void => {
    if (!onError) throw new AttfcError(msg);
    onError(msg);
  };
  const folders = readdirSync(root, { withFileTypes: true })
    .filter((d) => !d.name.startsWith('.') && isKind(root, d, 'directory'))
    .map((d) => d.name)
    .sort();
  const identityNames: string[] = [];
  const files: string[] = [];
  const starts: number[] = [];
  for (const name of folders) {
    const dir = join(root, name);
    const images = readdirSync(dir, { withFileTypes: true })
      .filter((d) => isImageFileName(d.name) && isKind(dir, d, 'file'))
      .map((d) => d.name)
      .sort();
    if (images.length === 0) {
      fail(`${dir}: identity folder has no .jpg/.jpeg/.png images`);
      continue;
    }
    starts.push(files.length);
    identityNames.push(name);
    for (const img of images) files.push(`${name}/${img}`);
  }
  if (identityNames.length === 0 && folders.length === 0) {
    fail(`${root}: no identity folders found (expected root/<identity>/<image>.jpg|png)`);
  }
  starts.push(files.length);
  const labels = new Int32Array(files.length);
  for (let j = 0; j < identityNames.length; j++) labels.fill(j, starts[j], starts[j + 1]);
  return { root, identityNames, files, labels, starts: Int32Array.from(starts) };
}

// Follows symlinks, which Dirent alone does not.
function isKind(dir: string, d: Dirent, kind: 'file' | 'directory'): boolean {
  if (d.isSymbolicLink()) {
    const s = statSync(join(dir, d.name), { throwIfNoEntry: false });
    return s !== undefined && (kind === 'file' ? s.isFile() : s.isDirectory());
  }
  return kind === 'file' ? d.isFile() : d.isDirectory();
}

/** A FaceDataset over an image folder. Images are read from disk on every `readImage`. */
export class ImageFolderDataset implements FaceDataset {
  readonly format = 'folder' as const;
  readonly imageSize = undefined;

  private constructor(readonly source: string, private readonly scan: ImageFolderScan) {}

  /** Lists `root`; throws an AttfcError for a missing root, no identity folders or an empty identity folder. */
  static open(root: string): ImageFolderDataset {
    return new ImageFolderDataset(root, scanImageFolder(root));
  }

  get numImages(): number {
    return this.scan.files.length;
  }

  get numIdentities(): number {
    return this.scan.identityNames.length;
  }

  /** Folder name of identity `id`. */
  identityName(id: number): string {
    this.checkIdentity(id);
    return this.scan.identityNames[id]!;
  }

  /** Path of image `i` relative to the root, e.g. "0001/3.jpg". */
  relativePath(i: number): string {
    this.checkImage(i);
    return this.scan.files[i]!;
  }

  label(i: number): number {
    this.checkImage(i);
    return this.scan.labels[i]!;
  }

  identityImages(id: number): Int32Array {
    this.checkIdentity(id);
    const out = new Int32Array(this.scan.starts[id + 1]! - this.scan.starts[id]!);
    for (let k = 0; k < out.length; k++) out[k] = this.scan.starts[id]! + k;
    return out;
  }

  readImage(i: number): Buffer {
    const path = this.describe(i);
    try {
      return readFileSync(path);
    } catch (e) {
      throw new AttfcError(`${path}: cannot read image (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }

  quality(i: number): number | undefined {
    this.checkImage(i);
    return undefined;
  }

  describe(i: number): string {
    this.checkImage(i);
    return join(this.scan.root, this.scan.files[i]!);
  }

  close(): void {}

  private checkImage(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.scan.files.length) throw new RangeError(`image index ${i} out of range 0..${this.scan.files.length - 1}`);
  }

  private checkIdentity(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.scan.identityNames.length) throw new RangeError(`identity ${id} out of range 0..${this.scan.identityNames.length - 1}`);
  }
}
