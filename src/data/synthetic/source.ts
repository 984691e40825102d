// The on-demand synthetic source: a FaceDataset whose images are rendered when they are read, so a run
// can train on millions of identities without a data set on disk. Image i is identity floor(i / k),
// image index i mod k (k images per identity), the order in which `attfc synth` writes train.rec, and
// its bytes are the JPEG synth would write there: training on `synth:NxK@S` sees exactly what training
// on the folder `attfc synth` made with the same options sees. Labels and per-identity image lists are
// arithmetic: nothing is stored per identity or per image.
import type { FaceDataset } from '../faceDataset.js';
import { GENERATOR_VERSION, type ResolvedRenderOptions, type ResolvedSynthOptions } from './options.js';
import { describeImage, renderAtTiles, type ImageKey } from './render.js';
import { trainImageTile } from './synthesize.js';
import { formatSynthSpec, parseSynthSpec } from './spec.js';

/** The options that decide the training images and labels (not the held-out verification set). */
export function trainingImageOptions(o: ResolvedSynthOptions): Record<string, number> {
  return {
    generatorVersion: GENERATOR_VERSION,
    identities: o.identities,
    imagesPerIdentity: o.imagesPerIdentity,
    seed: o.seed,
    size: o.size,
    lowQualityShare: o.lowQualityShare,
    familySize: o.familySize,
    jpegQuality: o.jpegQuality,
  };
}

export class SyntheticDataset implements FaceDataset {
  readonly format = 'synthetic' as const;
  readonly imageSize: { width: number; height: number };
  readonly numImages: number;
  readonly numIdentities: number;
  private readonly render: ResolvedRenderOptions;

  private constructor(
    readonly source: string,
    readonly options: ResolvedSynthOptions,
  ) {
    this.numIdentities = options.identities;
    this.numImages = options.identities * options.imagesPerIdentity;
    this.imageSize = { width: options.size, height: options.size };
    this.render = { size: options.size, lowQualityShare: options.lowQualityShare, familySize: options.familySize, jpegQuality: options.jpegQuality };
  }

  /** Opens `synth:...` (see spec.ts); a malformed spec is an AttfcError naming it. */
  static open(spec: string): SyntheticDataset {
    return new SyntheticDataset(spec, parseSynthSpec(spec));
  }

  /** The spec with every non-default option spelled out. */
  get canonicalSpec(): string {
    return formatSynthSpec(this.options);
  }

  /** Identity and image index of image `i`. */
  keyOf(i: number): ImageKey {
    this.checkImage(i);
    const k = this.options.imagesPerIdentity;
    return { id: Math.floor(i / k), k: i % k };
  }

  label(i: number): number {
    return this.keyOf(i).id;
  }

  identityImages(id: number): Int32Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.numIdentities) throw new RangeError(`identity ${id} out of range 0..${this.numIdentities - 1}`);
    const k = this.options.imagesPerIdentity;
    const out = new Int32Array(k);
    for (let j = 0; j < k; j++) out[j] = id * k + j;
    return out;
  }

  /** Renders image `i` (the JPEG bytes synth writes for it). */
  async readImage(i: number): Promise<Buffer> {
    return (await this.readImages([i]))[0]!;
  }

  /**
   * Renders many images together (up to 16 per rasteriser call), each distinct image once and in the
   * atlas tile synth renders it in, so its bytes are synth's.
   */
  async readImages(indices: ArrayLike<number>): Promise<Buffer[]> {
    const slot = new Map<number, number>();
    const keys: ImageKey[] = [];
    const tiles: number[] = [];
    const where = Array.from(indices, (i) => {
      let s = slot.get(i);
      if (s === undefined) {
        s = keys.length;
        slot.set(i, s);
        keys.push(this.keyOf(i));
        tiles.push(trainImageTile(i));
      }
      return s;
    });
    const rendered = await renderAtTiles(this.options.seed, keys, tiles, this.render);
    return where.map((s) => rendered[s]!.jpeg);
  }

  /** The quality synth records in the image's label, as the float32 it is stored as. */
  quality(i: number): number {
    const { id, k } = this.keyOf(i);
    return Math.fround(describeImage(this.options.seed, id, k, this.render).quality);
  }

  describe(i: number): string {
    const { id, k } = this.keyOf(i);
    return `${this.source} image ${i} (identity ${id}, image ${k})`;
  }

  close(): void {}

  private checkImage(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.numImages) throw new RangeError(`image index ${i} out of range 0..${this.numImages - 1}`);
  }
}
