// Writes verification sets byte-for-byte the way Python 2's cPickle.dump((bins, issame_list), f,
// protocol=2) does, which is the form of insightface's released lfw.bin / cfp_fp.bin / agedb_30.bin.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

/** One verification pair: two encoded images and whether they show the same identity. */
export interface VerificationPair {
  a: Buffer;
  b: Buffer;
  same: boolean;
}

// pickle.py batches list items in groups of 1000 (MARK ... APPENDS); a lone item uses APPEND.
const BATCH = 1000;

/** Serialises the pickle in chunks (the image bytes are referenced, never copied). */
export function verificationBinChunks(pairs: readonly VerificationPair[]): Buffer[] {
  const out: Buffer[] = [];
  let memo = 0;
  const put = (): Buffer => {
    // BINPUT for the first 256 memo slots, then LONG_BINPUT (u32)
    const i = memo++;
    if (i < 256) return Buffer.from([0x71, i]);
    const b = Buffer.alloc(5);
    b[0] = 0x72;
    b.writeUInt32LE(i, 1);
    return b;
  };
  const str = (data: Buffer): void => {
    // Python 2 str: SHORT_BINSTRING (<256 bytes) or BINSTRING (u32 length), then memoised
    if (data.length < 256) out.push(Buffer.from([0x55, data.length]));
    else {
      const h = Buffer.alloc(5);
      h[0] = 0x54;
      h.writeInt32LE(data.length, 1);
      out.push(h);
    }
    out.push(data, put());
  };
  const list = <T>(items: readonly T[], writeItem: (x: T) => void): void => {
    out.push(Buffer.from([0x5d]), put()); // EMPTY_LIST, memoised before its items
    for (let start = 0; start < items.length; start += BATCH) {
      const batch = items.slice(start, start + BATCH);
      if (batch.length === 1) {
        writeItem(batch[0]);
        out.push(Buffer.from([0x61])); // APPEND
      } else {
        out.push(Buffer.from([0x28])); // MARK
        for (const x of batch) writeItem(x);
        out.push(Buffer.from([0x65])); // APPENDS
      }
    }
  };

  out.push(Buffer.from([0x80, 0x02])); // PROTO 2
  const images: Buffer[] = [];
  for (const p of pairs) images.push(p.a, p.b);
  list(images, str);
  // bools are never memoised
  list(pairs, (p) => out.push(Buffer.from([p.same ? 0x88 : 0x89])));
  out.push(Buffer.from([0x86]), put(), Buffer.from([0x2e])); // TUPLE2, BINPUT, STOP
  return out;
}

/**
 * Writes `pairs` as a verification .bin (pickled `(bins, issame_list)`, Python-2 protocol 2), atomically:
 * a temporary file next to `path` is written, synced, then renamed over it.
 */
export function writeVerificationBin(path: string, pairs: { a: Buffer; b: Buffer; same: boolean }[], protocol: 2 = 2): void {
  if (protocol !== 2) throw new Error(`writeVerificationBin: protocol ${String(protocol)} is not supported (2 only)`);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    for (const chunk of verificationBinChunks(pairs)) {
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
    }
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmp, { force: true });
  }
  renameSync(tmp, path);
}
