// What every training data source is to the sampler and the data pipeline: a RecordIO set, an image
// folder, or the on-demand synthetic source. An interface only, so the sources and the code that opens
// them (dataset.ts) depend on it rather than on each other.
export interface FaceDataset {
  /** Path given by the user. */
  readonly source: string;
  readonly format: 'recordio' | 'folder' | 'synthetic';
  /** Images are indexed 0..numImages-1. */
  readonly numImages: number;
  readonly numIdentities: number;
  /** From the `property` file, if known. */
  readonly imageSize?: { width: number; height: number };
  /** Identity 0..numIdentities-1 of image i. */
  label(i: number): number;
  /** Image indices of an identity (a fresh array the caller may keep or modify). */
  identityImages(id: number): Int32Array;
  /**
   * Encoded image bytes: at once from files (sync, so worker threads can read concurrently), or a
   * promise from a source that renders its images.
   */
  readImage(i: number): Buffer | Promise<Buffer>;
  /** Many images at once, where that is cheaper than one by one (a rendering source); else absent. */
  readImages?(indices: ArrayLike<number>): Promise<Buffer[]>;
  /** Second label float if present (synthetic sets store [identity, quality]). */
  quality(i: number): number | undefined;
  /** E.g. "data/train.rec key 17" or "root/0001/3.jpg", for error messages. */
  describe(i: number): string;
  close(): void;
}
