// Image sizes read from the first bytes of PNG and JPEG files, without a decoder: so an absurd size in a
// header is refused before any library tries to allocate for it (libspng rejects such a PNG as a
// "corrupt header", which would hide the real reason). Pure: no Node APIs.

/** Bytes read from a file's start to find its size (a JPEG's frame header follows its EXIF, up to 64 KiB each). */
export const HEADER_BYTES = 256 * 1024;

/** The format and size a PNG or JPEG header declares, or null when the bytes are neither (or cut short). */
export function imageSizeFromHeader(b: Uint8Array): { format: 'png' | 'jpeg'; width: number; height: number } | null {
  const u32 = (o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  const u16 = (o: number) => (b[o] << 8) | b[o + 1];
  const PNG = [137, 80, 78, 71, 13, 10, 26, 10];
  if (b.length >= 24 && PNG.every((v, i) => b[i] === v) && String.fromCharCode(...b.subarray(12, 16)) === 'IHDR')
    return { format: 'png', width: u32(16), height: u32(20) };
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  // JPEG: walk the marker segments to the first start-of-frame (SOF0..SOF15 but DHT, JPG, DAC)
  let o = 2;
  while (o + 4 <= b.length) {
    if (b[o] !== 0xff) return null;
    const marker = b[o + 1];
    if (marker === 0xff) {
      o++; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      o += 2;
      continue;
    }
    const length = u16(o + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (o + 9 > b.length) return null;
      return { format: 'jpeg', height: u16(o + 5), width: u16(o + 7) };
    }
    if (marker === 0xda || length < 2) return null; // scan data before any frame header: not a JPEG we can size
    o += 2 + length;
  }
  return null;
}
