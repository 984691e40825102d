// Renders synthetic face photos: identity + per-image variation -> SVG -> sharp rasteriser -> capture
// effects on raw pixels -> JPEG. Many images are rasterised per sharp call, tiled in an atlas; an image's
// bytes are a pure function of (seed, id, k, options, tile), where the tile (its position in the 4x4
// atlas) matters only rarely, by one level of an edge pixel (see atlasSvg). `renderImage` is tile 0;
// `renderBatch` puts the i-th image of each group of 16 in tile i, as `attfc synth` renders its sets;
// `renderAtTiles` puts each image where the caller says (the on-demand source: where synth put it).
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
export const ATLAS_TILES = ATLAS_COLUMNS * ATLAS_COLUMNS;

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

/** Renders many images (in order) with one rasteriser call per 16, the i-th of each 16 in tile i. */
export async function renderBatch(seed: number, keys: readonly ImageKey[], opts: RenderOptions = {}): Promise<RenderedImage[]> {
  return renderAtTiles(seed, keys, keys.map((_, i) => i % ATLAS_TILES), opts);
}

/**
 * Renders each image in the atlas tile `tiles[i]` (0..15, row-major): its bytes are those renderBatch
 * gives an image at that position. Images go into as few atlases as keep every tile used once per atlas.
 */
export async function renderAtTiles(seed: number, keys: readonly ImageKey[], tiles: readonly number[], opts: RenderOptions = {}): Promise<RenderedImage[]> {
  if (tiles.length !== keys.length) throw new RangeError(`renderAtTiles: ${keys.length} keys but ${tiles.length} tiles`);
  const resolved = resolveRenderOptions(opts);
  const size = resolved.size;
  // atlas a holds the images whose tile was already taken in atlases 0..a-1
  const atlases: number[][] = [];
  const used: Set<number>[] = [];
  tiles.forEach((tile, i) => {
    if (!(Number.isInteger(tile) && tile >= 0 && tile < ATLAS_TILES)) throw new RangeError(`renderAtTiles: tile ${tile} is not in 0..${ATLAS_TILES - 1}`);
    let a = used.findIndex((u) => !u.has(tile));
    if (a < 0) {
      a = atlases.length;
      atlases.push([]);
      used.push(new Set());
    }
    atlases[a]!.push(i);
    used[a]!.add(tile);
  });
  const out: Promise<RenderedImage>[] = new Array(keys.length);
  for (const members of atlases) {
    const described = members.map((i) => describeImage(seed, keys[i]!.id, keys[i]!.k, resolved));
    const placed = members.map((i) => tiles[i]!);
    const rows = Math.max(...placed.map((t) => Math.floor(t / ATLAS_COLUMNS))) + 1;
    const atlas = await rasterize(
      atlasSvg(described.map((d) => ({ face: d.face, v: d.variation })), size, ATLAS_COLUMNS, placed),
      ATLAS_COLUMNS * size,
      rows * size,
    );
    members.forEach((i, m) => {
      const d = described[m]!;
      const rgb = captureEffects(seed, keys[i]!, extractTile(atlas, placed[m]!, size, ATLAS_COLUMNS), size, d.variation);
      // encoding runs on sharp's thread pool while this thread prepares the next images
      out[i] = encodeJpeg(rgb, size, d.variation.jpegQuality).then((jpeg) => ({ jpeg, quality: d.quality }));
    });
  }
  return Promise.all(out);
}
