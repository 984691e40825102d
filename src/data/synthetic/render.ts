// Renders synthetic face photos: identity + per-image variation -> SVG -> sharp rasteriser -> capture
// effects on raw pixels -> JPEG. Each image is a pure function of (seed, id, k, options); `renderBatch`
// rasterises many images per sharp call (an atlas) and yields exactly the bytes of `renderImage`.
import sharp from 'sharp';
import { identityParams, type FaceParams } from './identity.js';
import { resolveRenderOptions, type RenderOptions, type ResolvedRenderOptions } from './options.js';
import { qualityScore } from './quality.js';
import { STREAM, streamRng } from './seed.js';
import { atlasSvg, faceSvg } from './svg.js';
import { addNoise, gaussianBlur, illuminate, lowResolution, toBytes } from './pixels.js';
import { imageVariation, type ImageVariation } from './variation.js';

export interface RenderedImage {
  /** Baseline JPEG, size x size RGB. */
  jpeg: Buffer;
  /** Quality in [0,1]; 1 = clean, below LOW_QUALITY_THRESHOLD = drawn as low quality. */
  quality: number;
}

export interface ImageDescription {
  face: FaceParams;
  variation: ImageVariation;
  quality: number;
}

/** One image to render: identity id, image index k. */
export interface ImageKey {
  id: number;
  k: number;
}

/** Images per rasteriser call; tiles of a 4x4 atlas (the per-call overhead of sharp is ~1 ms). */
const ATLAS_COLUMNS = 4;
const ATLAS_TILES = ATLAS_COLUMNS * ATLAS_COLUMNS;

// identities are rendered in runs of consecutive images; remembering the last few avoids re-deriving them
const identityCache = new Map<string, FaceParams>();
const IDENTITY_CACHE_SIZE = 64;

function cachedIdentity(seed: number, id: number, opts: ResolvedRenderOptions): FaceParams {
  const key = `${seed}:${opts.familySize}:${id}`;
  let face = identityCache.get(key);
  if (face === undefined) {
    face = identityParams(seed, id, opts);
    if (identityCache.size >= IDENTITY_CACHE_SIZE) identityCache.delete(identityCache.keys().next().value as string);
    identityCache.set(key, face);
  }
  return face;
}

/** Everything that decides image k of identity id, without rendering it (cheap). */
export function describeImage(seed: number, id: number, k: number, opts: RenderOptions = {}): ImageDescription {
  const resolved = resolveRenderOptions(opts);
  const face = cachedIdentity(seed, id, resolved);
  const variation = imageVariation(seed, id, k, resolved, face);
  return { face, variation, quality: qualityScore(variation) };
}

/** Capture effects on a rasterised image (illumination, blur, low resolution, noise) -> 8-bit RGB. */
function captureEffects(seed: number, key: ImageKey, raster: Float32Array, size: number, v: ImageVariation): Buffer {
  const scale = size / 112;
  illuminate(raster, size, v.illumination);
  gaussianBlur(raster, size, v.blur112 * scale);
  lowResolution(raster, size, Math.max(4, Math.round(v.resolution112 * scale)));
  addNoise(raster, v.noise, streamRng(seed, STREAM.noise, key.id, key.k));
  return toBytes(raster);
}

function encodeJpeg(rgb: Buffer, size: number, quality: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:2:0' })
    .toBuffer();
}

async function rasterize(svg: string, width: number, height: number): Promise<Buffer> {
  const { data, info } = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height || info.channels !== 3) {
    throw new Error(`synthetic render: expected a ${width}x${height}x3 raster, got ${info.width}x${info.height}x${info.channels}`);
  }
  return data;
}

/** Copies tile `t` of an atlas raster into a float image. */
function extractTile(atlas: Buffer, t: number, size: number, columns: number): Float32Array {
  const out = new Float32Array(size * size * 3);
  const x0 = (t % columns) * size;
  const y0 = Math.floor(t / columns) * size;
  const stride = columns * size * 3;
  for (let y = 0; y < size; y++) {
    const src = (y0 + y) * stride + x0 * 3;
    out.set(atlas.subarray(src, src + size * 3), y * size * 3);
  }
  return out;
}

/** The image as raw 8-bit RGB before JPEG compression (size x size x 3). */
export async function renderPixels(seed: number, id: number, k: number, opts: RenderOptions = {}): Promise<{ rgb: Buffer; description: ImageDescription; size: number }> {
  const resolved = resolveRenderOptions(opts);
  const size = resolved.size;
  const description = describeImage(seed, id, k, resolved);
  const raster = await rasterize(faceSvg(description.face, description.variation, size), size, size);
  const rgb = captureEffects(seed, { id, k }, Float32Array.from(raster), size, description.variation);
  return { rgb, description, size };
}

/** Image k of identity id: JPEG bytes and quality score. Same arguments give the same bytes. */
export async function renderImage(seed: number, id: number, k: number, opts: RenderOptions = {}): Promise<RenderedImage> {
  const { rgb, description, size } = await renderPixels(seed, id, k, opts);
  return { jpeg: await encodeJpeg(rgb, size, description.variation.jpegQuality), quality: description.quality };
}

/** Renders many images (in order) with one rasteriser call per 16; identical to calling renderImage on each. */
export async function renderBatch(seed: number, keys: readonly ImageKey[], opts: RenderOptions = {}): Promise<RenderedImage[]> {
  const resolved = resolveRenderOptions(opts);
  const size = resolved.size;
  const out: Promise<RenderedImage>[] = [];
  for (let start = 0; start < keys.length; start += ATLAS_TILES) {
    const group = keys.slice(start, start + ATLAS_TILES);
    const described = group.map(({ id, k }) => describeImage(seed, id, k, resolved));
    const rows = Math.ceil(group.length / ATLAS_COLUMNS);
    const atlas = await rasterize(
      atlasSvg(described.map((d) => ({ face: d.face, v: d.variation })), size, ATLAS_COLUMNS),
      ATLAS_COLUMNS * size,
      rows * size,
    );
    group.forEach((key, t) => {
      const d = described[t];
      const rgb = captureEffects(seed, key, extractTile(atlas, t, size, ATLAS_COLUMNS), size, d.variation);
      // encoding runs on sharp's thread pool while this thread prepares the next images
      out.push(encodeJpeg(rgb, size, d.variation.jpegQuality).then((jpeg) => ({ jpeg, quality: d.quality })));
    });
  }
  return Promise.all(out);
}
