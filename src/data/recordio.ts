// MXNet RecordIO (dmlc framing), the MXNet image-record header, the `.idx` index and the `property`
// file. Reads go through an fd at explicit offsets (fs.readSync), so a 100+ GB `.rec`
// is never loaded and several worker threads can each open the same file and read concurrently.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { AttfcError } from '../errors.js';

/** dmlc RecordIO magic; on disk the bytes 0a 23 d7 ce. */
export const RECORDIO_MAGIC = 0xced7230a;
/** Bytes of the MXNet image header: u32 flag, f32 label, u64 id, u64 id2. */
export const IMAGE_HEADER_BYTES = 24;
/** A record part's length must fit in the 29 low bits of `lrec`. */
export const MAX_PART_LENGTH = 2 ** 29 - 1;

const LENGTH_MASK = 0x1fffffff;
const MAGIC_BYTES = Buffer.from([0x0a, 0x23, 0xd7, 0xce]);

/** What to write for one MXNet image record. */
export interface ImageRecord {
  /** Scalar label (flag 0). Ignored when `labels` is non-empty. */
  label?: number;
  /** Vector label: written as flag = labels.length float32s after the header; the scalar label is then 0. */
  labels?: ArrayLike<number>;
  id?: number;
  id2?: number;
  /** Encoded image bytes (empty for insightface header and identity records). */
  payload?: Uint8Array;
}

/** A decoded MXNet image record. `payload` is a view into the record's buffer. */
export interface ParsedImageRecord {
  flag: number;
  label: number;
  labels: Float32Array;
  id: number;
  id2: number;
  payload: Buffer;
}

/** Identity of an image record: the scalar label if flag == 0, else the first label float. */
export function identityLabel(rec: Pick<ParsedImageRecord, 'flag' | 'label' | 'labels'>): number {
  return rec.flag === 0 ? rec.label : rec.labels[0]!;
}

/** Header + label floats + payload, i.e. the record data before framing. */
export function encodeImageRecord(rec: ImageRecord): Buffer {
  const labels = rec.labels ?? [];
  const payload = rec.payload ?? new Uint8Array(0);
  const flag = labels.length;
  const out = Buffer.alloc(IMAGE_HEADER_BYTES + 4 * flag + payload.length);
  out.writeUInt32LE(flag, 0);
  out.writeFloatLE(flag > 0 ? 0 : rec.label ?? 0, 4);
  out.writeBigUInt64LE(BigInt(rec.id ?? 0), 8);
  out.writeBigUInt64LE(BigInt(rec.id2 ?? 0), 16);
  for (let i = 0; i < flag; i++) out.writeFloatLE(labels[i]!, IMAGE_HEADER_BYTES + 4 * i);
  out.set(payload, IMAGE_HEADER_BYTES + 4 * flag);
  return out;
}

/**
 * Decodes the image header and label floats of a record's data. `where` names the record for errors.
 * `data` may be just a prefix of the record when only the header is needed.
 */
export function parseImageRecord(data: Buffer, where: string): ParsedImageRecord {
  if (data.length < IMAGE_HEADER_BYTES) {
    throw new AttfcError(`${where}: record is ${data.length} bytes, shorter than the ${IMAGE_HEADER_BYTES}-byte image header`);
  }
  const flag = data.readUInt32LE(0);
  const headerEnd = IMAGE_HEADER_BYTES + 4 * flag;
  if (headerEnd > data.length) {
    throw new AttfcError(`${where}: image header says ${flag} label floats follow but the record has only ${data.length} bytes`);
  }
  const labels = new Float32Array(flag);
  for (let i = 0; i < flag; i++) labels[i] = data.readFloatLE(IMAGE_HEADER_BYTES + 4 * i);
  return {
    flag,
    label: data.readFloatLE(4),
    labels,
    id: Number(data.readBigUInt64LE(8)),
    id2: Number(data.readBigUInt64LE(16)),
    payload: data.subarray(headerEnd),
  };
}

const pad4 = (n: number): number => (n + 3) & ~3;

/**
 * Frames record data for the `.rec` file: magic, lrec, data, zero padding to 4. Like dmlc's writer, a
 * magic found at a 4-aligned offset inside the data splits the record there (cflag 1/2/3) and those
 * 4 bytes are dropped; the reader re-inserts them between the parts.
 */
export function frameRecord(data: Uint8Array): Buffer {
  if (data.length > MAX_PART_LENGTH) throw new RangeError(`record of ${data.length} bytes exceeds the RecordIO limit of 2^29-1`);
  const cuts: Array<[number, number]> = [];
  let start = 0;
  const alignedEnd = data.length - (data.length % 4);
  for (let i = 0; i < alignedEnd; i += 4) {
    if (data[i] === 0x0a && data[i + 1] === 0x23 && data[i + 2] === 0xd7 && data[i + 3] === 0xce) {
      cuts.push([start, i]);
      start = i + 4;
    }
  }
  cuts.push([start, data.length]);
  let total = 0;
  for (const [s, e] of cuts) total += 8 + pad4(e - s);
  const out = Buffer.alloc(total);
  let pos = 0;
  cuts.forEach(([s, e], k) => {
    const cflag = cuts.length === 1 ? 0 : k === 0 ? 1 : k === cuts.length - 1 ? 3 : 2;
    out.writeUInt32LE(RECORDIO_MAGIC, pos);
    out.writeUInt32LE(((cflag << 29) | (e - s)) >>> 0, pos + 4);
    out.set(data.subarray(s, e), pos + 8);
    pos += 8 + pad4(e - s);
  });
  return out;
}

/** Image size and class count from an insightface `property` file (`num_classes,H,W`). */
export interface DatasetProperty {
  numClasses: number;
  height: number;
  width: number;
}

export function readProperty(path: string): DatasetProperty {
  const text = readFileSync(path, 'utf8').trim();
  const parts = text.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.length !== 3 || parts.some((s) => !/^\d+$/.test(s)) || nums[1] === 0 || nums[2] === 0) {
    throw new AttfcError(`${path}: expected one line "num_classes,height,width" of integers, got ${quote(text)}`);
  }
  return { numClasses: nums[0]!, height: nums[1]!, width: nums[2]! };
}

export function formatProperty(p: DatasetProperty): string {
  return `${p.numClasses},${p.height},${p.width}\n`;
}

/** The parsed `.idx`: keys and byte offsets in file order, plus key -> offset lookup. */
export class RecordIndex {
  private readonly dense: Float64Array | null;
  private readonly sparse: Map<number, number> | null;

  constructor(
    /** Keys in `.idx` line order. */
    readonly keys: Float64Array,
    /** Byte offsets, parallel to `keys`. */
    readonly offsets: Float64Array,
  ) {
    let maxKey = -1;
    for (const k of keys) if (k > maxKey) maxKey = k;
    // Real indexes are dense 0..n-1; a flat table is far smaller and faster than a Map there.
    if (maxKey < 4 * keys.length + 1024) {
      this.dense = new Float64Array(maxKey + 1).fill(-1);
      for (let i = 0; i < keys.length; i++) this.dense[keys[i]!] = offsets[i]!;
      this.sparse = null;
    } else {
      this.sparse = new Map();
      for (let i = 0; i < keys.length; i++) this.sparse.set(keys[i]!, offsets[i]!);
      this.dense = null;
    }
  }

  get size(): number {
    return this.keys.length;
  }

  /** Byte offset of `key`, or -1 if the index has no such key. */
  offsetOf(key: number): number {
    if (this.dense) return key >= 0 && key < this.dense.length ? this.dense[key]! : -1;
    return this.sparse!.get(key) ?? -1;
  }

  has(key: number): boolean {
    return this.offsetOf(key) >= 0;
  }
}

/**
 * Parses `.idx` text (`key<TAB>offset<LF>` lines). Bad lines (malformed, offset not 4-aligned or past
 * the end of the `.rec`, duplicate key) throw an AttfcError, or, if `onError` is given, are reported
 * there and skipped.
 */
export function parseIndex(
  text: Buffer,
  idxPath: string,
  recPath: string,
  recSize: number,
  onError?: (message: string) => void,
): RecordIndex {
  let lineCount = 1;
  for (let p = text.indexOf(10); p >= 0; p = text.indexOf(10, p + 1)) lineCount++;
  const keys = new Float64Array(lineCount);
  const offsets = new Float64Array(lineCount);
  const lines = new Float64Array(lineCount);
  const parsed = new Float64Array(2);
  let n = 0;
  const fail = (line: number, problem: string): void => {
    const msg = `${idxPath} line ${line}: ${problem}`;
    if (!onError) throw new AttfcError(msg);
    onError(msg);
  };
  let start = 0;
  for (let line = 1; start < text.length; line++) {
    let end = text.indexOf(10, start);
    if (end < 0) end = text.length;
    const lineStart = start;
    const status = parseIndexLine(text, lineStart, end, parsed);
    start = end + 1;
    if (status === LINE_BLANK) continue;
    if (status === LINE_BAD) {
      fail(line, `expected "key<TAB>offset", got ${quote(text.toString('latin1', lineStart, end).replace(/\r$/, ''))}`);
      continue;
    }
    const key = parsed[0]!;
    const offset = parsed[1]!;
    if (offset + 8 > recSize) {
      fail(line, `offset ${offset} (key ${key}) is past the end of ${recPath} (${recSize} bytes)`);
    } else if (offset % 4 !== 0) {
      fail(line, `offset ${offset} (key ${key}) is not a multiple of 4, so no RecordIO record can start there`);
    } else {
      keys[n] = key;
      offsets[n] = offset;
      lines[n] = line;
      n++;
    }
  }
  // Duplicates are found after parsing with a native sort; only if there are any are their lines looked up.
  const sorted = keys.slice(0, n).sort();
  let hasDuplicates = false;
  for (let r = 1; r < n && !hasDuplicates; r++) hasDuplicates = sorted[r] === sorted[r - 1];
  if (hasDuplicates) {
    const seen = new Set<number>();
    let m = 0;
    for (let i = 0; i < n; i++) {
      if (seen.has(keys[i]!)) {
        fail(lines[i]!, `key ${keys[i]} appears a second time`);
        continue;
      }
      seen.add(keys[i]!);
      keys[m] = keys[i]!;
      offsets[m] = offsets[i]!;
      m++;
    }
    n = m;
  }
  return new RecordIndex(keys.slice(0, n), offsets.slice(0, n));
}

const LINE_OK = 0;
const LINE_BLANK = 1;
const LINE_BAD = 2;

/**
 * Parses one `.idx` line in text[start, end) into out[0] = key, out[1] = offset; returns LINE_OK,
 * LINE_BLANK or LINE_BAD. Works on bytes without allocating: indexes have millions of lines.
 */
function parseIndexLine(text: Buffer, start: number, end: number, out: Float64Array): number {
  let p = skipWhitespace(text, start, end);
  if (p === end) return LINE_BLANK;
  const keyStart = p;
  let key = 0;
  for (; p < end && text[p]! >= 48 && text[p]! <= 57; p++) key = key * 10 + (text[p]! - 48);
  if (p === keyStart || p === end || (text[p] !== 9 && text[p] !== 32)) return LINE_BAD;
  while (p < end && (text[p] === 9 || text[p] === 32)) p++;
  const offsetStart = p;
  let offset = 0;
  for (; p < end && text[p]! >= 48 && text[p]! <= 57; p++) offset = offset * 10 + (text[p]! - 48);
  if (p === offsetStart || key > Number.MAX_SAFE_INTEGER || offset > Number.MAX_SAFE_INTEGER) return LINE_BAD;
  out[0] = key;
  out[1] = offset;
  return skipWhitespace(text, p, end) === end ? LINE_OK : LINE_BAD;
}

function skipWhitespace(text: Buffer, p: number, end: number): number {
  while (p < end && (text[p] === 9 || text[p] === 32 || text[p] === 13)) p++;
  return p;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);
}

/** Header fields of an image record, read without its payload. */
export type ImageRecordHeader = Omit<ParsedImageRecord, 'payload'> & {
  /** Bytes of encoded image after the header and label floats. */
  payloadLength: number;
};

/** Open `.rec` + `.idx` pair with random access by key. */
export class RecordIOFile {
  private fd: number | null;
  // Reused by readHeaderAt: reads are synchronous, and each thread opens its own RecordIOFile.
  private readonly headerScratch = Buffer.alloc(128);

  private constructor(
    readonly recPath: string,
    readonly idxPath: string,
    fd: number,
    /** Size of the `.rec` in bytes. */
    readonly size: number,
    readonly index: RecordIndex,
  ) {
    this.fd = fd;
  }

  /** Opens the pair; see `parseIndex` for `onIndexError`. Missing files throw an AttfcError. */
  static open(recPath: string, idxPath: string, options: { onIndexError?: (message: string) => void } = {}): RecordIOFile {
    for (const p of [recPath, idxPath]) {
      if (!existsSync(p)) throw new AttfcError(`${p}: file not found (a RecordIO dataset needs both the .rec and its .idx)`);
    }
    const fd = openSync(recPath, 'r');
    try {
      const size = fstatSync(fd).size;
      const index = parseIndex(readFileSync(idxPath), idxPath, recPath, size, options.onIndexError);
      return new RecordIOFile(recPath, idxPath, fd, size, index);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** "train.rec key 17", for error messages. */
  describeKey(key: number): string {
    return `${this.recPath} key ${key}`;
  }

  /** Byte offset of `key`; an AttfcError naming the `.idx` if the key is not indexed. */
  offsetOf(key: number): number {
    const offset = this.index.offsetOf(key);
    if (offset < 0) throw new AttfcError(`${this.idxPath}: key ${key} is missing`);
    return offset;
  }

  /** The whole data of the record with `key`, parts joined. */
  readRecord(key: number): Buffer {
    return this.readRecordAt(this.offsetOf(key), this.describeKey(key));
  }

  /** The whole data of the record starting at `offset`, parts joined with the magic re-inserted. */
  readRecordAt(offset: number, where: string): Buffer {
    const head = Buffer.allocUnsafe(8);
    const parts: Buffer[] = [];
    for (let pos = offset; ; ) {
      const { cflag, length } = this.readPartHead(head, pos, offset, where);
      const first = parts.length === 0;
      if (first !== (cflag === 0 || cflag === 1)) {
        const expected = first ? 'a whole record or a first part (cflag 0 or 1)' : 'a continuation part (cflag 2 or 3)';
        throw new AttfcError(`${where} (offset ${offset}): part at offset ${pos} has cflag ${cflag}, expected ${expected}`);
      }
      const data = Buffer.allocUnsafe(length);
      this.readExact(data, pos + 8);
      parts.push(data);
      if (cflag === 0 || cflag === 3) break;
      pos += 8 + pad4(length);
    }
    if (parts.length === 1) return parts[0]!;
    const joined: Buffer[] = [];
    parts.forEach((p, i) => joined.push(...(i > 0 ? [MAGIC_BYTES, p] : [p])));
    return Buffer.concat(joined);
  }

  /**
   * The image header and label floats of the record at `offset`, reading only its first bytes in the
   * common case (a single-part record); falls back to reading the whole record otherwise.
   */
  readHeaderAt(offset: number, where: string): ImageRecordHeader {
    const chunk = this.headerScratch;
    const got = readSync(this.requireFd(), chunk, 0, chunk.length, offset);
    if (got >= 8 + IMAGE_HEADER_BYTES && chunk.readUInt32LE(0) === RECORDIO_MAGIC) {
      const lrec = chunk.readUInt32LE(4);
      const length = lrec & LENGTH_MASK;
      const flag = chunk.readUInt32LE(8);
      const headerEnd = IMAGE_HEADER_BYTES + 4 * flag;
      if (lrec >>> 29 === 0 && offset + 8 + length <= this.size && headerEnd <= length && 8 + headerEnd <= got) {
        const rec = parseImageRecord(chunk.subarray(8, 8 + headerEnd), where);
        return { ...withoutPayload(rec), payloadLength: length - headerEnd };
      }
    }
    const rec = parseImageRecord(this.readRecordAt(offset, where), where);
    return { ...withoutPayload(rec), payloadLength: rec.payload.length };
  }

  readHeader(key: number): ImageRecordHeader {
    return this.readHeaderAt(this.offsetOf(key), this.describeKey(key));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private readPartHead(head: Buffer, pos: number, recordOffset: number, where: string): { cflag: number; length: number } {
    const at = `${where} (offset ${recordOffset})`;
    if (pos + 8 > this.size) {
      throw new AttfcError(`${at}: record part at offset ${pos} runs past the end of the file (${this.size} bytes); truncated file?`);
    }
    this.readExact(head, pos);
    const magic = head.readUInt32LE(0);
    if (magic !== RECORDIO_MAGIC) {
      throw new AttfcError(`${at}: expected RecordIO magic 0a 23 d7 ce at offset ${pos}, found ${head.subarray(0, 4).toString('hex').replace(/(..)(?!$)/g, '$1 ')}`);
    }
    const lrec = head.readUInt32LE(4);
    const length = lrec & LENGTH_MASK;
    if (pos + 8 + length > this.size) {
      throw new AttfcError(`${at}: record of ${length} bytes at offset ${pos} runs past the end of the file (${this.size} bytes); truncated file?`);
    }
    return { cflag: lrec >>> 29, length };
  }

  private readExact(buf: Buffer, position: number): void {
    const fd = this.requireFd();
    for (let done = 0; done < buf.length; ) {
      const got = readSync(fd, buf, done, buf.length - done, position + done);
      // Sizes were checked against fstat, so a short read means the file shrank under us.
      if (got === 0) throw new AttfcError(`${this.recPath}: unexpected end of file at offset ${position + done}`);
      done += got;
    }
  }

  private requireFd(): number {
    if (this.fd === null) throw new Error(`${this.recPath} is closed`);
    return this.fd;
  }
}

function withoutPayload(rec: ParsedImageRecord): Omit<ParsedImageRecord, 'payload'> {
  const { payload: _payload, ...header } = rec;
  return header;
}
