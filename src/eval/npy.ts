// NumPy .npy (format 1.0) writer for float32 matrices, readable by np.load.
import { renameSync, writeFileSync } from 'node:fs';
import { endianness } from 'node:os';

/** The .npy bytes of a C-order float32 array of `shape`. */
export function encodeNpyFloat32(data: Float32Array, shape: readonly number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`npy: ${data.length} values do not fill shape [${shape.join(', ')}]`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // magic(6) + version(2) + header length(2) + header, padded with spaces to a multiple of 64, ending in \n
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head); // \x93NUMPY v1.0
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (endianness() === 'BE') {
    const le = Buffer.from(body);
    le.swap32();
    return Buffer.concat([head, Buffer.from(header, 'latin1'), le]);
  }
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

/** Writes a float32 .npy file atomically (temp file + rename). */
export function writeNpyFloat32(path: string, data: Float32Array, shape: readonly number[]): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, encodeNpyFloat32(data, shape));
  renameSync(tmp, path);
}
