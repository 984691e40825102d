// `data inspect`: checks a dataset and summarises it, collecting every problem instead of stopping at
// the first: index lines, record framing, headers and labels of every image, identity ranges, and a
// decode check of a sample of images spread evenly over the set. The on-demand synthetic source has
// no files to check: its sample is rendered and decoded.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AttfcError } from '../errors.js';
import {
  checkIdentityLabel,
  checkImage,
  detectLayout,
  locateDataset,
  readIdentityRange,
  type DatasetLocation,
  type RecordIOLayout,
} from './dataset.js';
import { scanImageFolder } from './imageFolder.js';
import { SyntheticDataset } from './synthetic/source.js';
import { identityLabel, parseImageRecord, readProperty, RecordIOFile, type DatasetProperty } from './recordio.js';

export interface InspectOptions {
  /** Images to decode-check, spread evenly (default 200; Infinity = all). */
  sample?: number;
  /** Also return each image's key and label. */
  labels?: boolean;
  /** Stop recording errors after this many (default 1000); the rest are counted in a final line. */
  maxErrors?: number;
}

export interface InspectReport {
  source: string;
  format: 'recordio' | 'folder' | 'synthetic' | null;
  layout?: RecordIOLayout['kind'];
  identities: number;
  images: number;
  minPerIdentity: number;
  medianPerIdentity: number;
  maxPerIdentity: number;
  imageSize: { width: number; height: number } | null;
  /** Images whose full decode was attempted. */
  decodeChecked: number;
  /** One line per problem; empty when the dataset is sound. */
  errors: string[];
  /** With `labels`: record key (RecordIO) or path relative to the root (folder) and the image's own label. */
  labels?: Array<{ key: string; label: number }>;
}

const DEFAULT_SAMPLE = 200;
const DEFAULT_MAX_ERRORS = 1000;
const DECODE_BATCH = 8;

/** Checks the dataset at `path` (anything `openDataset` accepts). Problems go to `errors`; it never throws for bad input. */
export async function inspect(path: string, options: InspectOptions = {}): Promise<InspectReport> {
  const log = new ErrorLog(options.maxErrors ?? DEFAULT_MAX_ERRORS);
  const sample = options.sample ?? DEFAULT_SAMPLE;
  if (!(sample >= 0)) throw new RangeError(`inspect: sample must be >= 0, got ${sample}`);
  const loc = log.attempt(() => locateDataset(path));
  let scan: Scan = emptyScan();
  if (loc?.format === 'recordio') scan = await inspectRecordIO(loc, log, sample, options.labels === true);
  else if (loc?.format === 'folder') scan = await inspectFolder(loc.root, log, sample, options.labels === true);
  else if (loc?.format === 'synthetic') scan = await inspectSynthetic(path, log, sample, options.labels === true);
  const perIdentity = scan.counts.slice().sort();
  const report: InspectReport = {
    source: path,
    format: loc?.format ?? null,
    ...(scan.layout ? { layout: scan.layout } : {}),
    identities: perIdentity.length,
    images: scan.images,
    minPerIdentity: perIdentity[0] ?? 0,
    medianPerIdentity: median(perIdentity),
    maxPerIdentity: perIdentity[perIdentity.length - 1] ?? 0,
    imageSize: scan.imageSize,
    decodeChecked: scan.decodeChecked,
    errors: log.finish(),
  };
  if (options.labels) report.labels = scan.labels;
  return report;
}

interface Scan {
  layout?: RecordIOLayout['kind'];
  images: number;
  /** Images per identity, index = identity. */
  counts: Int32Array;
  imageSize: { width: number; height: number } | null;
  decodeChecked: number;
  labels: Array<{ key: string; label: number }>;
}

function emptyScan(): Scan {
  return { images: 0, counts: new Int32Array(0), imageSize: null, decodeChecked: 0, labels: [] };
}

class ErrorLog {
  private readonly errors: string[] = [];
  private readonly seen = new Set<string>();
  private dropped = 0;

  constructor(private readonly max: number) {}

  /** Records a problem; the same message twice (a record seen by two checks) is kept once. */
  add = (message: string): void => {
    if (this.seen.has(message)) return;
    if (this.errors.length < this.max) {
      this.seen.add(message);
      this.errors.push(message);
    } else {
      this.dropped++;
    }
  };

  /** Runs `fn`; an AttfcError is logged and gives undefined, anything else is a bug and propagates. */
  attempt<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof AttfcError)) throw e;
      this.add(e.message);
      return undefined;
    }
  }

  finish(): string[] {
    return this.dropped > 0 ? [...this.errors, `... and ${this.dropped} more errors`] : [...this.errors];
  }
}

async function inspectRecordIO(
  loc: Extract<DatasetLocation, { format: 'recordio' }>,
  log: ErrorLog,
  sample: number,
  wantLabels: boolean,
): Promise<Scan> {
  const file = log.attempt(() => RecordIOFile.open(loc.rec, loc.idx, { onIndexError: log.add }));
  if (!file) return emptyScan();
  try {
    const property = loc.property ? log.attempt(() => readProperty(loc.property!)) : undefined;
    const layout = log.attempt(() => detectLayout(file));
    if (!layout) return emptyScan();
    const imageKeys = layout.kind === 'im2rec' ? Array.from(file.index.keys) : imageKeysOf(file, layout, log);
    const numClasses = declaredClasses(loc, property, layout, file);
    const labels = new Float64Array(imageKeys.length).fill(NaN);
    const listed: Scan['labels'] = [];
    imageKeys.forEach((key, i) => {
      const where = file.describeKey(key);
      const header = log.attempt(() => file.readHeader(key));
      if (!header) return;
      const value = identityLabel(header);
      if (wantLabels) listed.push({ key: String(key), label: value });
      if (log.attempt(() => checkIdentityLabel(value, where, numClasses)) !== undefined) labels[i] = value;
    });
    if (layout.kind === 'insightface') {
      const labelOfKey = new Map<number, number>();
      imageKeys.forEach((key, i) => labelOfKey.set(key, labels[i]!));
      checkIdentityRecords(file, layout, labelOfKey, log, property, loc.property);
    }
    let maxLabel = -1;
    for (const v of labels) if (v > maxLabel) maxLabel = v;
    const counts = new Int32Array(numClasses?.count ?? maxLabel + 1);
    for (const v of labels) if (!Number.isNaN(v)) counts[v]!++;
    const decoded = await decodeSample(imageKeys.length, sample, log, (i) => {
      const where = file.describeKey(imageKeys[i]!);
      return { where, bytes: () => parseImageRecord(file.readRecord(imageKeys[i]!), where).payload };
    });
    const imageSize = property ? { width: property.width, height: property.height } : decoded.firstSize;
    return { layout: layout.kind, images: imageKeys.length, counts, imageSize, decodeChecked: decoded.checked, labels: listed };
  } finally {
    file.close();
  }
}

/** Image keys 1..id_start-1 that the index holds; each missing one is an error. */
function imageKeysOf(file: RecordIOFile, layout: { idStart: number }, log: ErrorLog): number[] {
  const keys: number[] = [];
  for (let k = 1; k < layout.idStart; k++) {
    if (file.index.has(k)) keys.push(k);
    else log.add(`${file.idxPath}: image key ${k} is missing (the header record says image keys run 1..${layout.idStart - 1})`);
  }
  return keys;
}

function declaredClasses(
  loc: { property: string | null },
  property: DatasetProperty | undefined,
  layout: RecordIOLayout,
  file: RecordIOFile,
): { count: number; from: string } | undefined {
  if (property) return { count: property.numClasses, from: loc.property! };
  if (layout.kind === 'insightface' && layout.idEnd > layout.idStart) {
    return { count: layout.idEnd - layout.idStart, from: `${file.describeKey(0)} (header record)` };
  }
  return undefined;
}

/**
 * insightface layout: identity ranges must tile the image keys and agree with every image's own label
 * (`labels` by record key: a missing key must not shift the others).
 */
function checkIdentityRecords(
  file: RecordIOFile,
  layout: { idStart: number; idEnd: number },
  labels: Map<number, number>,
  log: ErrorLog,
  property: DatasetProperty | undefined,
  propertyPath: string | null,
): void {
  const { idStart, idEnd } = layout;
  const identityKeys: number[] = [];
  for (let k = idStart; k < idEnd; k++) if (file.index.has(k)) identityKeys.push(k);
  if (identityKeys.length === 0) return; // header-only sets: labels come from the image records
  if (property && property.numClasses !== idEnd - idStart) {
    log.add(`${propertyPath}: num_classes ${property.numClasses} disagrees with the ${idEnd - idStart} identities of ${file.describeKey(0)} (header record)`);
  }
  let expected = 1;
  for (let j = 0; j < idEnd - idStart; j++) {
    const key = idStart + j;
    if (!file.index.has(key)) {
      log.add(`${file.idxPath}: identity record key ${key} is missing (identity ${j})`);
      continue;
    }
    const where = `${file.describeKey(key)} (identity record ${j})`;
    const range = log.attempt(() => readIdentityRange(file, key, where));
    if (!range) continue;
    const [a, b] = range;
    if (a !== expected || b < a || b > idStart) {
      log.add(`${where}: image range [${a}, ${b}) should start at key ${expected} (where the previous identity ends) and end by key ${idStart}`);
    }
    // compare each image in the range with its own label (missing keys are reported elsewhere)
    for (let k = Math.max(a, 1); k < Math.min(b, idStart); k++) {
      const v = labels.get(k);
      if (v !== undefined && !Number.isNaN(v) && v !== j) log.add(`${file.describeKey(k)}: label ${v} disagrees with identity record key ${key} (identity ${j}, image keys [${a}, ${b}))`);
    }
    if (b >= a) expected = b;
  }
  if (expected !== idStart) {
    log.add(`${file.describeKey(idEnd - 1)} (identity record ${idEnd - idStart - 1}): identity ranges end at key ${expected - 1} but the header record says images run to key ${idStart - 1}`);
  }
}

/** The on-demand synthetic source: k images per identity by construction; a sample is rendered and decoded. */
async function inspectSynthetic(spec: string, log: ErrorLog, sample: number, wantLabels: boolean): Promise<Scan> {
  const ds = SyntheticDataset.open(spec);
  const counts = new Int32Array(ds.numIdentities).fill(ds.options.imagesPerIdentity);
  const labels = wantLabels ? Array.from({ length: ds.numImages }, (_, i) => ({ key: String(i), label: ds.label(i) })) : [];
  const decoded = await decodeSample(ds.numImages, sample, log, (i) => ({ where: ds.describe(i), bytes: () => ds.readImage(i) }));
  return { images: ds.numImages, counts, imageSize: ds.imageSize, decodeChecked: decoded.checked, labels };
}

async function inspectFolder(root: string, log: ErrorLog, sample: number, wantLabels: boolean): Promise<Scan> {
  const scan = log.attempt(() => scanImageFolder(root, log.add));
  if (!scan) return emptyScan();
  const counts = new Int32Array(scan.identityNames.length);
  for (let j = 0; j < counts.length; j++) counts[j] = scan.starts[j + 1]! - scan.starts[j]!;
  const labels = wantLabels ? scan.files.map((key, i) => ({ key, label: scan.labels[i]! })) : [];
  const decoded = await decodeSample(scan.files.length, sample, log, (i) => {
    const where = join(root, scan.files[i]!);
    return {
      where,
      bytes: () => {
        try {
          return readFileSync(where);
        } catch (e) {
          throw new AttfcError(`${where}: cannot read image (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
      },
    };
  });
  return { images: scan.files.length, counts, imageSize: decoded.firstSize, decodeChecked: decoded.checked, labels };
}

/** Decodes `min(sample, n)` images spread evenly over 0..n-1 (a few at a time; sharp decodes off-thread). */
async function decodeSample(
  n: number,
  sample: number,
  log: ErrorLog,
  image: (i: number) => { where: string; bytes: () => Buffer | Promise<Buffer> },
): Promise<{ checked: number; firstSize: { width: number; height: number } | null }> {
  const count = Math.min(n, sample);
  let firstSize: { width: number; height: number } | null = null;
  for (let k0 = 0; k0 < count; k0 += DECODE_BATCH) {
    const batch: Array<Promise<{ width: number; height: number } | AttfcError>> = [];
    for (let k = k0; k < Math.min(count, k0 + DECODE_BATCH); k++) {
      const { where, bytes } = image(Math.floor((k * n) / count));
      batch.push(decodeOrError(bytes, where));
    }
    // Logged after the whole batch so errors keep sample order, whatever order decodes finish in.
    for (const result of await Promise.all(batch)) {
      if (result instanceof AttfcError) log.add(result.message);
      else firstSize ??= { width: result.width, height: result.height };
    }
  }
  return { checked: count, firstSize };
}

async function decodeOrError(bytes: () => Buffer | Promise<Buffer>, where: string): Promise<{ width: number; height: number } | AttfcError> {
  try {
    return await checkImage(await bytes(), where);
  } catch (e) {
    if (e instanceof AttfcError) return e;
    throw e;
  }
}

function median(sorted: ArrayLike<number>): number {
  if (sorted.length === 0) return 0;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
