// Real photos for the face tests (../shared/data/photos: astronaut.png has one face, chelsea.png a cat)
// and multi-face scenes composed from AT&T faces: each face rotated and scaled by a known similarity
// transform and pasted on a seeded background, so where its landmarks must land is known exactly.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { applyAffine, warpAffineBilinear, type Affine } from '../../src/face/align.js';
import type { RgbImage } from '../../src/face/image.js';
import { Rng } from '../../src/util/rng.js';

/** The photos folder beside the clone (CI, the main checkout) or one level further up (a worktree); null when absent. */
export function photosDir(): string | null {
  const candidates = [path.resolve('..', 'shared', 'data', 'photos'), path.resolve('..', '..', 'shared', 'data', 'photos')];
  return candidates.find((dir) => existsSync(path.join(dir, 'astronaut.png'))) ?? null;
}

/** Why a test that needs the photos cannot run, or undefined when it can. */
export function photosMissing(): string | undefined {
  return photosDir() ? undefined : 'the test photos are not at ../shared/data/photos';
}

/** A face placed in a scene: its source pixels, and the map from source to scene pixels. */
export interface Placement {
  source: RgbImage;
  /** Rotation in degrees (counter-clockwise on screen), scale, and where the source's centre lands. */
  angle: number;
  scale: number;
  centre: [number, number];
}

/** The similarity transform of a placement (source pixel -> scene pixel, pixel centres at integers). */
export function placementAffine(p: Placement): Affine {
  const t = (-p.angle * Math.PI) / 180; // image y points down: counter-clockwise on screen is a negative angle
  const c = p.scale * Math.cos(t);
  const s = p.scale * Math.sin(t);
  const cx = (p.source.width - 1) / 2;
  const cy = (p.source.height - 1) / 2;
  return [c, -s, p.centre[0] - (c * cx - s * cy), s, c, p.centre[1] - (s * cx + c * cy)];
}

/** Maps flat [x, y, ...] points through an affine map. */
export function mapPoints(m: Affine, points: readonly (readonly [number, number])[]): [number, number][] {
  return points.map(([x, y]) => applyAffine(m, x, y));
}

/**
 * A width x height scene: a smooth seeded colour background with noise, and each face warped onto it
 * (bilinear, the same warp as alignment; only pixels the source fully covers are pasted).
 */
export function composeScene(width: number, height: number, faces: readonly Placement[], seed: number): RgbImage {
  const rng = new Rng(seed);
  const data = new Uint8Array(width * height * 3);
  const base = [rng.uniform(60, 200), rng.uniform(60, 200), rng.uniform(60, 200)];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) {
        const v = base[c] + 40 * Math.sin((x + 37 * c) / 53) * Math.cos((y - 11 * c) / 41) + rng.uniform(-12, 12);
        data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
  for (const p of faces) {
    const m = placementAffine(p);
    const pixels = warpAffineBilinear(p.source.data, p.source.width, p.source.height, m, width, height, 3);
    const cover = warpAffineBilinear(new Uint8Array(p.source.width * p.source.height).fill(255), p.source.width, p.source.height, m, width, height, 1);
    for (let i = 0; i < width * height; i++) if (cover[i] === 255) data.set(pixels.subarray(3 * i, 3 * i + 3), 3 * i);
  }
  return { width, height, data };
}

/** Cosine similarity of two vectors. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}
