// The one dataset interface the sampler, trainer and evaluation use, and `openDataset`, which picks the
// reader from the path: a RecordIO dataset (insightface or im2rec layout), an image folder, or the
// on-demand synthetic source (`synth:...`, rendered as images are read).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import sharp from 'sharp';
import { AttfcError } from '../errors.js';
import { ImageFolderDataset } from './imageFolder.js';
import { identityLabel, parseImageRecord, readProperty, RecordIOFile, type DatasetProperty } from './recordio.js';
import { isSynthSpec, parseSynthSpec } from './synthetic/spec.js';
import { SyntheticDataset } from './synthetic/source.js';
import type { ResolvedSynthOptions } from './synthetic/options.js';
import type { FaceDataset } from './faceDataset.js';

export type { FaceDataset } from './faceDataset.js';

/** Which files make up a dataset path. */
export type DatasetLocation =
  | { format: 'recordio'; rec: string; idx: string; property: string | null }
  | { format: 'folder'; root: string }
  | { format: 'synthetic'; options: ResolvedSynthOptions };

/**
 * Resolves a user path: `synth:...` (the on-demand synthetic source), a directory with train.rec
 * (+ train.idx, property), a directory with exactly one `.rec`, a `.rec` (or `.idx`) file, or otherwise
 * an image folder.
 */
export function locateDataset(path: string): DatasetLocation {
  if (isSynthSpec(path)) return { format: 'synthetic', options: parseSynthSpec(path) };
  if (!existsSync(path)) throw new AttfcError(`${path}: no such file or directory`);
  if (statSync(path).isDirectory()) {
    const property = existsSync(join(path, 'property')) ? join(path, 'property') : null;
    if (existsSync(join(path, 'train.rec'))) return { format: 'recordio', rec: join(path, 'train.rec'), idx: join(path, 'train.idx'), property };
    const recs = readdirSync(path).filter((n) => n.endsWith('.rec'));
    if (recs.length === 1) return { format: 'recordio', rec: join(path, recs[0]!), idx: join(path, recs[0]!.replace(/\.rec$/, '.idx')), property };
    if (recs.length > 1) throw new AttfcError(`${path}: holds several .rec files (${recs.join(', ')}); give the path of one`);
    return { format: 'folder', root: path };
  }
  if (/\.(rec|idx)$/.test(path)) {
    const stem = path.replace(/\.(rec|idx)$/, '');
    const property = join(dirname(path), 'property');
    return { format: 'recordio', rec: `${stem}.rec`, idx: `${stem}.idx`, property: existsSync(property) ? property : null };
  }
  throw new AttfcError(`${path}: expected a dataset directory, a .rec file or an image folder, found ${basename(path)}`);
}

/** Opens a dataset; every problem with the user's files is a one-line AttfcError. */
export function openDataset(path: string): FaceDataset {
  const loc = locateDataset(path);
  if (loc.format === 'synthetic') return SyntheticDataset.open(path);
  return loc.format === 'folder' ? ImageFolderDataset.open(path) : RecordIODataset.open(path, loc);
}

/**
 * How keys of a `.rec` map to images: insightface's (key 0 is a header record whose label
 * [id_start, id_end] gives the keys of the per-identity header records; the images are keys 1 to
 * id_start - 1) or im2rec's (every key is an image).
 */
export type RecordIOLayout = { kind: 'insightface'; idStart: number; idEnd: number } | { kind: 'im2rec' };

/**
 * insightface layout if key 0 is a header record (label floats, empty payload), else im2rec (every
 * key is an image). A header record with an impossible range is an AttfcError.
 */
export function detectLayout(file: RecordIOFile): RecordIOLayout {
  if (!file.index.has(0)) return { kind: 'im2rec' };
  const h = file.readHeader(0);
  if (h.payloadLength !== 0 || h.flag < 2) return { kind: 'im2rec' };
  const [idStart, idEnd] = [h.labels[0]!, h.labels[1]!];
  if (!Number.isInteger(idStart) || !Number.isInteger(idEnd) || idStart < 1 || idEnd < idStart) {
    throw new AttfcError(`${file.describeKey(0)} (header record): expected label [id_start, id_end] with 1 <= id_start <= id_end, got [${idStart}, ${idEnd}]`);
  }
  return { kind: 'insightface', idStart, idEnd };
}

/** Returns `value` if it is a valid identity (integer, >= 0, < numClasses when known), else an AttfcError. */
export function checkIdentityLabel(value: number, where: string, numClasses?: { count: number; from: string }): number {
  if (!Number.isInteger(value) || value < 0) throw new AttfcError(`${where}: label ${value} is not a non-negative integer identity`);
  if (numClasses && value >= numClasses.count) {
    throw new AttfcError(`${where}: label ${value} is out of range (num_classes is ${numClasses.count} from ${numClasses.from})`);
  }
  return value;
}

/** Decodes `image` fully (sharp); an AttfcError naming `where` if it is not a readable image. */
export async function checkImage(image: Buffer, where: string): Promise<{ width: number; height: number; format: string }> {
  if (image.length === 0) throw new AttfcError(`${where}: image is empty (0 bytes)`);
  try {
    const img = sharp(image, { failOn: 'warning' });
    const meta = await img.metadata();
    const { info } = await img.raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, format: meta.format ?? 'unknown' };
  } catch (e) {
    const reason = String((e as Error).message ?? e).split('\n')[0];
    throw new AttfcError(`${where}: cannot decode image (${reason})`);
  }
}

/** Per-image tables of a RecordIO dataset. Identity j owns images order[starts[j] .. starts[j+1]-1]. */
interface LabelTable {
  keys: Float64Array;
  offsets: Float64Array;
  labels: Int32Array;
  order: Int32Array;
  starts: Int32Array;
  /** Quality per image; NaN = none. Only meaningful where `qualityKnown` is 1. */
  quality: Float32Array;
  qualityKnown: Uint8Array;
}

/** How many identities `open` spot-checks against their image records in the insightface layout. */
const SPOT_CHECK_IDENTITIES = 32;

/** A FaceDataset over a `.rec`/`.idx` pair. */
export class RecordIODataset implements FaceDataset {
  readonly format = 'recordio' as const;
  readonly imageSize?: { width: number; height: number };

  /**
   * Set when the labels come from identity records: each image's own header label is then checked as
   * it is read (opening only spot-checks them), with what `data inspect` reports for it.
   */
  private ownLabelCheck: { count: number; from: string; idStart: number } | null = null;

  private constructor(
    readonly source: string,
    readonly layout: RecordIOLayout,
    private readonly file: RecordIOFile,
    private readonly table: LabelTable,
    readonly numIdentities: number,
    property: DatasetProperty | null,
  ) {
    if (property) this.imageSize = { width: property.width, height: property.height };
  }

  /**
   * Builds the label table from headers only. insightface layout: labels come from the identity records'
   * ranges (a few image headers are spot-checked against them); if a file has no identity records, or
   * in the im2rec layout, every image header is read once.
   */
  static open(source: string, loc: Extract<DatasetLocation, { format: 'recordio' }>): RecordIODataset {
    const file = RecordIOFile.open(loc.rec, loc.idx);
    try {
      const property = loc.property ? readProperty(loc.property) : null;
      const fromProperty = property ? { count: property.numClasses, from: loc.property! } : undefined;
      const layout = detectLayout(file);
      let table: LabelTable;
      let numIdentities: number;
      if (layout.kind === 'im2rec') {
        ({ table, numIdentities } = labelsFromImageHeaders(file, file.index.keys, fromProperty));
      } else {
        const imageKeys = Float64Array.from({ length: layout.idStart - 1 }, (_, k) => k + 1);
        const identityKeys = layout.idEnd - layout.idStart;
        let present = 0;
        for (let k = layout.idStart; k < layout.idEnd; k++) if (file.index.has(k)) present++;
        if (present === 0) {
          // Some released sets carry only the header; fall back to the labels in the image records.
          const declared = fromProperty ?? (identityKeys > 0 ? { count: identityKeys, from: `${file.describeKey(0)} (header record)` } : undefined);
          ({ table, numIdentities } = labelsFromImageHeaders(file, imageKeys, declared));
        } else {
          table = labelsFromIdentityRecords(file, layout, imageKeys);
          numIdentities = identityKeys;
          if (property && property.numClasses !== numIdentities) {
            throw new AttfcError(`${loc.property}: num_classes ${property.numClasses} disagrees with the ${numIdentities} identities of ${file.describeKey(0)} (header record)`);
          }
          spotCheckIdentities(file, layout, table);
          const ds = new RecordIODataset(source, layout, file, table, numIdentities, property);
          ds.ownLabelCheck = { ...(fromProperty ?? { count: numIdentities, from: `${file.describeKey(0)} (header record)` }), idStart: layout.idStart };
          return ds;
        }
      }
      return new RecordIODataset(source, layout, file, table, numIdentities, property);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  get numImages(): number {
    return this.table.keys.length;
  }

  /** Record key of image `i` in the `.rec`. */
  key(i: number): number {
    this.checkImage(i);
    return this.table.keys[i]!;
  }

  label(i: number): number {
    this.checkImage(i);
    return this.table.labels[i]!;
  }

  identityImages(id: number): Int32Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.numIdentities) throw new RangeError(`identity ${id} out of range 0..${this.numIdentities - 1}`);
    return this.table.order.slice(this.table.starts[id], this.table.starts[id + 1]);
  }

  readImage(i: number): Buffer {
    const where = this.describe(i);
    const data = this.file.readRecordAt(this.table.offsets[i]!, where);
    const record = parseImageRecord(data, where);
    if (record.payload.length === 0) throw new AttfcError(`${where}: image record has an empty payload`);
    const check = this.ownLabelCheck;
    if (check) {
      // the same errors as `data inspect`: an image whose own label is not its identity is not used
      const own = checkIdentityLabel(identityLabel(record), where, check);
      const id = this.table.labels[i]!;
      if (own !== id) {
        const [s, e] = [this.table.starts[id]!, this.table.starts[id + 1]!];
        throw new AttfcError(`${where}: label ${own} disagrees with identity record key ${check.idStart + id} (identity ${id}, image keys [${s + 1}, ${e + 1}))`);
      }
    }
    return record.payload;
  }

  quality(i: number): number | undefined {
    this.checkImage(i);
    const t = this.table;
    if (!t.qualityKnown[i]) {
      const h = this.file.readHeaderAt(t.offsets[i]!, this.describe(i));
      t.quality[i] = h.flag >= 2 ? h.labels[1]! : NaN;
      t.qualityKnown[i] = 1;
    }
    const q = t.quality[i]!;
    return Number.isNaN(q) ? undefined : q;
  }

  describe(i: number): string {
    return this.file.describeKey(this.key(i));
  }

  close(): void {
    this.file.close();
  }

  private checkImage(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.table.keys.length) throw new RangeError(`image index ${i} out of range 0..${this.table.keys.length - 1}`);
  }
}

function offsetsOf(file: RecordIOFile, keys: Float64Array, why: string): Float64Array {
  const offsets = new Float64Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const off = file.index.offsetOf(keys[i]!);
    if (off < 0) throw new AttfcError(`${file.idxPath}: key ${keys[i]} is missing (${why})`);
    offsets[i] = off;
  }
  return offsets;
}

function emptyQuality(n: number): Pick<LabelTable, 'quality' | 'qualityKnown'> {
  return { quality: new Float32Array(n).fill(NaN), qualityKnown: new Uint8Array(n) };
}

/** Reads every image header for its label (and quality); groups images by identity with a counting sort. */
function labelsFromImageHeaders(
  file: RecordIOFile,
  keys: Float64Array,
  numClasses: { count: number; from: string } | undefined,
): { table: LabelTable; numIdentities: number } {
  const offsets = offsetsOf(file, keys, 'image keys must all be indexed');
  const n = keys.length;
  const labels = new Int32Array(n);
  const { quality, qualityKnown } = emptyQuality(n);
  let maxLabel = -1;
  for (let i = 0; i < n; i++) {
    const where = file.describeKey(keys[i]!);
    const h = file.readHeaderAt(offsets[i]!, where);
    const v = checkIdentityLabel(identityLabel(h), where, numClasses);
    labels[i] = v;
    if (v > maxLabel) maxLabel = v;
    quality[i] = h.flag >= 2 ? h.labels[1]! : NaN;
    qualityKnown[i] = 1;
  }
  const numIdentities = numClasses?.count ?? maxLabel + 1;
  const starts = new Int32Array(numIdentities + 1);
  for (let i = 0; i < n; i++) starts[labels[i]! + 1]!++;
  for (let j = 0; j < numIdentities; j++) starts[j + 1]! += starts[j]!;
  const fill = starts.slice(0, numIdentities);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[fill[labels[i]!]!++] = i;
  return { table: { keys, offsets, labels, order, starts, quality, qualityKnown }, numIdentities };
}

/** insightface layout: identity records give contiguous [img_start, img_end) ranges tiling keys 1..id_start-1. */
function labelsFromIdentityRecords(file: RecordIOFile, layout: { idStart: number; idEnd: number }, keys: Float64Array): LabelTable {
  const { idStart, idEnd } = layout;
  const n = keys.length;
  const offsets = offsetsOf(file, keys, `the header record says image keys run 1..${idStart - 1}`);
  const numIdentities = idEnd - idStart;
  const labels = new Int32Array(n);
  const starts = new Int32Array(numIdentities + 1);
  let expected = 1;
  for (let j = 0; j < numIdentities; j++) {
    const key = idStart + j;
    const where = `${file.describeKey(key)} (identity record ${j})`;
    const [a, b] = readIdentityRange(file, key, where);
    if (a !== expected || b < a || b > idStart) {
      throw new AttfcError(`${where}: image range [${a}, ${b}) should start at key ${expected} (where the previous identity ends) and end by key ${idStart}`);
    }
    starts[j] = a - 1;
    labels.fill(j, a - 1, b - 1);
    expected = b;
  }
  if (expected !== idStart && numIdentities > 0) {
    throw new AttfcError(`${file.describeKey(idEnd - 1)} (identity record ${numIdentities - 1}): identity ranges end at key ${expected - 1} but the header record says images run to key ${idStart - 1}`);
  }
  starts[numIdentities] = n;
  return { keys, offsets, labels, order: Int32Array.from({ length: n }, (_, i) => i), starts, ...emptyQuality(n) };
}

/** [img_start, img_end) of the insightface identity record `key`; an AttfcError naming `where` if it is not one. */
export function readIdentityRange(file: RecordIOFile, key: number, where: string): [number, number] {
  if (!file.index.has(key)) throw new AttfcError(`${file.idxPath}: identity record key ${key} is missing`);
  const h = file.readHeader(key);
  const [a, b] = [h.labels[0], h.labels[1]];
  if (h.flag < 2 || !Number.isInteger(a) || !Number.isInteger(b)) {
    throw new AttfcError(`${where}: expected label [img_start, img_end) of two integers, got flag ${h.flag} labels [${Array.from(h.labels)}]`);
  }
  return [a!, b!];
}

/** Reads the first and last image of up to SPOT_CHECK_IDENTITIES identities and checks their labels agree with the ranges. */
function spotCheckIdentities(file: RecordIOFile, layout: { idStart: number; idEnd: number }, table: LabelTable): void {
  const numIdentities = layout.idEnd - layout.idStart;
  const picks = Math.min(SPOT_CHECK_IDENTITIES, numIdentities);
  for (let p = 0; p < picks; p++) {
    const j = Math.floor((p * numIdentities) / picks);
    const [s, e] = [table.starts[j]!, table.starts[j + 1]!];
    for (const i of e > s ? [s, e - 1] : []) {
      const where = file.describeKey(table.keys[i]!);
      const value = identityLabel(file.readHeaderAt(table.offsets[i]!, where));
      if (value !== j) {
        throw new AttfcError(`${where}: label ${value} disagrees with identity record key ${layout.idStart + j} (identity ${j}, image keys [${s + 1}, ${e + 1}))`);
      }
    }
  }
}
