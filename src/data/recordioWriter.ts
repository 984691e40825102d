// Writes MXNet RecordIO files: a low-level key/record writer, and the insightface dataset layout
// (train.rec + train.idx + property) that the reader in recordio.ts and insightface's loaders expect.
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { encodeImageRecord, formatProperty, frameRecord, type ImageRecord } from './recordio.js';

const IDX_FLUSH_CHARS = 1 << 20;

/** Appends framed records to a `.rec` and their `key<TAB>offset` lines to a `.idx`, in write order. */
export class RecordIOWriter {
  private recFd: number | null;
  private idxFd: number | null;
  private offset = 0;
  private pendingIdx = '';

  constructor(readonly recPath: string, readonly idxPath: string) {
    this.recFd = openSync(recPath, 'w');
    try {
      this.idxFd = openSync(idxPath, 'w');
    } catch (e) {
      closeSync(this.recFd);
      throw e;
    }
  }

  /** Bytes written to the `.rec` so far. */
  get bytesWritten(): number {
    return this.offset;
  }

  /** Writes an MXNet image record under `key`; returns its byte offset. */
  writeRecord(key: number, record: ImageRecord): number {
    return this.writeData(key, encodeImageRecord(record));
  }

  /** Writes arbitrary record data under `key` (framed and split on embedded magics); returns its byte offset. */
  writeData(key: number, data: Uint8Array): number {
    if (this.recFd === null) throw new Error(`${this.recPath}: writer is closed`);
    if (!Number.isSafeInteger(key) || key < 0) throw new RangeError(`record key must be a non-negative integer, got ${key}`);
    const framed = frameRecord(data);
    const at = this.offset;
    for (let done = 0; done < framed.length; ) done += writeSync(this.recFd, framed, done, framed.length - done);
    this.offset += framed.length;
    this.pendingIdx += `${key}\t${at}\n`;
    if (this.pendingIdx.length >= IDX_FLUSH_CHARS) this.flushIdx();
    return at;
  }

  close(): void {
    if (this.recFd === null) return;
    this.flushIdx();
    closeSync(this.recFd);
    closeSync(this.idxFd!);
    this.recFd = null;
    this.idxFd = null;
  }

  private flushIdx(): void {
    if (this.pendingIdx.length > 0) writeSync(this.idxFd!, this.pendingIdx);
    this.pendingIdx = '';
  }
}

export interface InsightfaceRecWriterOptions {
  /** Image width written to `property`. */
  width: number;
  /** Image height written to `property`. */
  height: number;
}

// Header and identity records store key ranges as float32, which is exact only up to 2^24.
const MAX_EXACT_KEY = 2 ** 24;

/**
 * Builds an insightface-layout dataset in `dir`: image records under keys 1..N (id = key), then one
 * identity record per identity (label [img_start, img_end)) and the key-0 header record (label
 * [id_start, id_end]), physically after the images as insightface writes them, plus `property`.
 * Everything goes to temporary names that are renamed at `close()`, so a crash never leaves a
 * half-written dataset under the real names.
 */
export class InsightfaceRecWriter {
  private readonly writer: RecordIOWriter;
  private readonly temp: { rec: string; idx: string; property: string };
  private readonly identityStartKeys: number[] = [];
  private nextKey = 1;
  private closed = false;

  constructor(readonly dir: string, private readonly options: InsightfaceRecWriterOptions) {
    for (const [name, v] of Object.entries(options)) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`InsightfaceRecWriter: ${name} must be a positive integer, got ${v}`);
    }
    mkdirSync(dir, { recursive: true });
    const tag = `${process.pid}-${Math.random().toString(36).slice(2, 10)}.partial`;
    this.temp = {
      rec: join(dir, `.train.rec.${tag}`),
      idx: join(dir, `.train.idx.${tag}`),
      property: join(dir, `.property.${tag}`),
    };
    this.writer = new RecordIOWriter(this.temp.rec, this.temp.idx);
  }

  /** Images added so far. */
  get numImages(): number {
    return this.nextKey - 1;
  }

  /** Identities seen so far (the last identity + 1). */
  get numIdentities(): number {
    return this.identityStartKeys.length;
  }

  /**
   * Adds one encoded image. Identities must come in non-decreasing order starting at 0 without gaps.
   * With `extraLabels` (e.g. [quality]) the label is the vector [identity, ...extraLabels]; otherwise a
   * scalar label (flag 0).
   */
  add(identity: number, image: Buffer, extraLabels: number[] = []): void {
    if (this.closed) throw new Error(`InsightfaceRecWriter(${this.dir}): add() after close()`);
    const last = this.identityStartKeys.length - 1;
    if (!Number.isInteger(identity) || (identity !== last && identity !== last + 1)) {
      const expected = last < 0 ? '0' : `${last} or ${last + 1}`;
      throw new RangeError(`InsightfaceRecWriter: identities must be added in order without gaps; got ${identity}, expected ${expected}`);
    }
    if (image.length === 0) throw new RangeError(`InsightfaceRecWriter: empty image for identity ${identity}`);
    if (extraLabels.some((v) => !Number.isFinite(v))) throw new RangeError(`InsightfaceRecWriter: extra labels must be finite numbers, got [${extraLabels}]`);
    if (identity === last + 1) this.identityStartKeys.push(this.nextKey);
    if (this.nextKey + this.identityStartKeys.length + 1 > MAX_EXACT_KEY) {
      throw new RangeError('InsightfaceRecWriter: more than 2^24 records cannot be indexed exactly by the float32 ranges of the insightface layout');
    }
    const key = this.nextKey++;
    const record = extraLabels.length > 0 ? { labels: [identity, ...extraLabels] } : { label: identity };
    this.writer.writeRecord(key, { ...record, id: key, id2: 0, payload: image });
  }

  /** Writes identity and header records and `property`, then moves the files to their real names. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const idStart = this.nextKey;
    const idEnd = idStart + this.identityStartKeys.length;
    this.identityStartKeys.forEach((imgStart, j) => {
      const imgEnd = this.identityStartKeys[j + 1] ?? idStart;
      this.writer.writeRecord(idStart + j, { labels: [imgStart, imgEnd], id: idStart + j, id2: 0 });
    });
    this.writer.writeRecord(0, { labels: [idStart, idEnd], id: 0, id2: 1 });
    this.writer.close();
    const { width, height } = this.options;
    writeFileSync(this.temp.property, formatProperty({ numClasses: this.identityStartKeys.length, height, width }));
    // Drop an old index first: a crash between renames then leaves no openable dataset, never a mixed one.
    const finalIdx = join(this.dir, 'train.idx');
    if (existsSync(finalIdx)) unlinkSync(finalIdx);
    renameSync(this.temp.property, join(this.dir, 'property'));
    renameSync(this.temp.rec, join(this.dir, 'train.rec'));
    renameSync(this.temp.idx, finalIdx);
  }

  /** Stops writing and deletes the temporary files; the real names are left untouched. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    this.writer.close();
    for (const p of Object.values(this.temp)) rmSync(p, { force: true });
  }
}
