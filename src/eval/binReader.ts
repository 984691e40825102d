// Reads insightface verification sets (lfw.bin, cfp_fp.bin, agedb_30.bin, ...): a pickled
// (bins, issame_list) tuple, in every variant released files use: Python-2 protocol-2 pickles of
// JPEG byte strings, Python-3 pickles (bytes opcodes, frames, memo, `_codecs.encode` for protocol 2),
// and images stored as pickled numpy uint8 arrays. Anything else is refused with an error.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { AttfcError } from '../errors.js';
import { NumpyArray, PyList, PyTuple, numpyValues, unpickle, type PyValue } from './pickle.js';

/** A parsed verification set: 2P encoded images (pair i = images[2i], images[2i+1]) and P labels. */
export interface VerificationSet {
  /** Name used in reports, e.g. 'lfw' for lfw.bin. */
  name: string;
  /** Encoded images (JPEG/PNG bytes), usually views into the file buffer. */
  images: Buffer[];
  /** issame[i] is true when pair i shows the same identity. */
  issame: boolean[];
}

/** Default set name from a file path: 'data/agedb_30.bin' -> 'agedb_30'. */
export function setNameFromPath(path: string): string {
  return basename(path).replace(/\.bin$/i, '');
}

function sequence(v: PyValue): PyValue[] | null {
  return v instanceof PyList || v instanceof PyTuple ? v.items : null;
}

function imageBytes(v: PyValue, i: number, file: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof NumpyArray) {
    const kind = v.dtype?.kind;
    if ((kind !== 'u1' && kind !== 'i1') || !v.data)
      throw new AttfcError(`${file}: image ${i} is a numpy array of dtype ${v.dtype?.code ?? '?'}, expected uint8`);
    // cv2.imencode returns shape [N, 1]; any shape with one non-trivial axis is a byte string
    if (v.shape.filter((d) => d !== 1).length > 1)
      throw new AttfcError(
        `${file}: image ${i} is a numpy array of shape [${v.shape.join(',')}], expected a 1-D uint8 array of encoded image bytes`,
      );
    return v.data;
  }
  throw new AttfcError(`${file}: image ${i} is not a byte string (got ${describe(v)})`);
}

function labelValues(v: PyValue, file: string): boolean[] {
  let raw: PyValue[] | (boolean | number)[] | null = sequence(v);
  if (!raw && v instanceof NumpyArray) {
    try {
      raw = numpyValues(v);
    } catch (e) {
      throw new AttfcError(`${file}: issame_list: ${(e as Error).message}`);
    }
  }
  if (!raw) throw new AttfcError(`${file}: issame_list is not a list (got ${describe(v)})`);
  return raw.map((x, i) => {
    if (typeof x === 'boolean') return x;
    if (x === 0 || x === 1) return x === 1;
    throw new AttfcError(`${file}: issame_list[${i}] is ${describe(x as PyValue)}, expected a boolean`);
  });
}

function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (Buffer.isBuffer(v)) return `bytes of length ${v.length}`;
  if (v instanceof PyList) return `a list of ${v.items.length}`;
  if (v instanceof PyTuple) return `a tuple of ${v.items.length}`;
  if (v instanceof NumpyArray) return `a numpy array of shape [${v.shape.join(',')}]`;
  if (typeof v === 'object') return v.constructor.name;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Interprets an already-read .bin file. `file` names it in errors. */
export function parseVerificationBin(buf: Buffer, file: string, name = setNameFromPath(file)): VerificationSet {
  const root = unpickle(buf, file);
  const parts = sequence(root);
  if (!parts || parts.length !== 2)
    throw new AttfcError(`${file}: expected a pickled (bins, issame_list) pair, got ${describe(root)}`);
  const bins = sequence(parts[0]);
  if (!bins) throw new AttfcError(`${file}: bins is not a list (got ${describe(parts[0])})`);
  const issame = labelValues(parts[1], file);
  if (bins.length % 2 !== 0)
    throw new AttfcError(`${file}: odd number of images (${bins.length}); pairs need 2 images each`);
  if (bins.length !== 2 * issame.length)
    throw new AttfcError(
      `${file}: pair count mismatch: ${bins.length} images make ${bins.length / 2} pairs but issame_list has ${issame.length} labels`,
    );
  const images = bins.map((b, i) => imageBytes(b, i, file));
  return { name, images, issame };
}

/** Reads a verification .bin file in one go (real sets are ~100 MB); images stay encoded. */
export function readVerificationBin(path: string, name?: string): VerificationSet {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new AttfcError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseVerificationBin(buf, path, name ?? setNameFromPath(path));
}
