// Per-image variation of a face photo: pose, expression, illumination and colour cast, background,
// clothing, occlusion, and the capture degradations (blur, low resolution, noise, JPEG). A share of the
// images is drawn as LOW-QUALITY: one to three heavy degradations among blur / low resolution / noise /
// occlusion. Severities are normalised to [0,1] so the quality score (quality.ts) does not depend on size.
import type { Rgb, FaceParams } from './identity.js';
import type { ResolvedRenderOptions } from './options.js';
import { STREAM, streamRng } from './seed.js';
import type { Rng } from '../../util/rng.js';

export type OcclusionKind = 'none' | 'sunglasses' | 'mask' | 'hand' | 'hat';
export type Degradation = 'blur' | 'lowRes' | 'noise' | 'occlusion';

export interface Blob {
  x: number;
  y: number;
  rx: number;
  ry: number;
  color: Rgb;
  opacity: number;
}

export interface ImageVariation {
  lowQuality: boolean;
  /** The heavy degradations of a low-quality image (empty for clean images). */
  heavy: Degradation[];
  /** roll in degrees, shift in canvas units, yaw in [-1,1] (1 ~ a strong turn to the image's right). */
  pose: { roll: number; shiftX: number; shiftY: number; scale: number; yaw: number };
  expression: { smile: number; mouthOpen: number; eyeClosure: number; browRaise: number };
  hairJitter: number;
  wearsGlasses: boolean;
  /** Directional light (angle in radians, strength as relative gain across the image), global gain/contrast, per-channel cast. */
  illumination: { angle: number; strength: number; brightness: number; contrast: number; cast: Rgb };
  /** Wall colour, a second surface beyond a straight edge (normal angle in degrees, offset from the centre), blobs. */
  background: { colorA: Rgb; colorB: Rgb; angle: number; edge: number; blobs: Blob[] };
  clothing: Rgb;
  occlusion: { kind: OcclusionKind; severity: number; color: Rgb; x: number; y: number; angle: number; variant: number };
  /** Gaussian blur sigma in pixels of a 112-pixel image. */
  blur112: number;
  /** Effective resolution in pixels of a 112-pixel image (112 = full resolution). */
  resolution112: number;
  /** Additive Gaussian noise std in 8-bit levels. */
  noise: number;
  jpegQuality: number;
}

/** Values at which each degradation's normalised severity reaches 1. */
export const SEVERITY_SCALE = { blur112: 4, minResolution112: 10, noise: 30 } as const;
/** Heavy degradations have severity in [HEAVY_MIN, 1]; clean images keep every severity <= MILD_MAX. */
export const HEAVY_MIN = 0.72;
export const MILD_MAX = 0.2;

const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

function randomColor(rng: Rng, lo = 0, hi = 255): Rgb {
  return [rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(lo, hi)];
}

/** Backgrounds are mostly desaturated, as indoor and outdoor scenes are. */
function mutedColor(rng: Rng): Rgb {
  const c = randomColor(rng);
  const grey = rng.uniform(40, 220);
  const keep = rng.uniform(0.15, 0.6);
  return [grey + (c[0] - grey) * keep, grey + (c[1] - grey) * keep, grey + (c[2] - grey) * keep];
}

function severityToValue(kind: Exclude<Degradation, 'occlusion'>, s: number): number {
  if (kind === 'blur') return s * SEVERITY_SCALE.blur112;
  if (kind === 'noise') return s * SEVERITY_SCALE.noise;
  return 112 - s * (112 - SEVERITY_SCALE.minResolution112);
}

function occlusionOf(rng: Rng, kind: OcclusionKind, severity: number, face: FaceParams) {
  const palette: Record<OcclusionKind, () => Rgb> = {
    none: () => [0, 0, 0],
    sunglasses: () => randomColor(rng, 5, 60),
    mask: () => pickOne<Rgb>(rng, [[200, 220, 235], [236, 236, 232], [40, 40, 44], [150, 160, 170]]),
    hand: () => {
      const c = face.skin.color;
      const d = rng.uniform(-18, 18);
      return [clamp(c[0] + d, 0, 255), clamp(c[1] + d, 0, 255), clamp(c[2] + d, 0, 255)];
    },
    hat: () => randomColor(rng, 20, 220),
  };
  return {
    kind,
    severity,
    color: palette[kind](),
    x: rng.uniform(-1, 1),
    y: rng.uniform(-1, 1),
    angle: rng.uniform(-35, 35),
    variant: rng.int(3),
  };
}

/**
 * The variation of image `k` of an identity. Pure function of (seed, id, k, options, face); `face` only
 * decides identity-dependent choices (whether glasses are worn today, the hand's skin colour).
 */
export function imageVariation(seed: number, id: number, k: number, opts: ResolvedRenderOptions, face: FaceParams): ImageVariation {
  const rng = streamRng(seed, STREAM.image, id, k);
  const lowQuality = rng.next() < opts.lowQualityShare;

  const pose = {
    roll: clamp(4 * rng.normal(), -10, 10),
    shiftX: rng.uniform(-4, 4),
    shiftY: rng.uniform(-4, 4),
    scale: rng.uniform(0.93, 1.07),
    yaw: clamp(0.25 * rng.normal(), -0.55, 0.55),
  };

  const mood = rng.next();
  const surprised = mood >= 0.9;
  const talking = mood >= 0.75 && !surprised;
  const smiling = mood >= 0.45 && mood < 0.75;
  const blink = rng.next() < 0.08;
  const expression = {
    smile: clamp(face.mouth.restingSmile + (smiling ? rng.uniform(0.4, 0.9) : rng.uniform(-0.15, 0.15)), -0.5, 1),
    mouthOpen: surprised ? rng.uniform(0.5, 1) : talking ? rng.uniform(0.2, 0.7) : smiling && rng.next() < 0.4 ? rng.uniform(0.2, 0.5) : 0,
    eyeClosure: blink ? rng.uniform(0.6, 1) : rng.uniform(0, 0.25) + (smiling ? 0.1 : 0),
    browRaise: surprised ? rng.uniform(0.7, 1) : rng.uniform(-0.45, 0.45),
  };

  const hairJitter = rng.uniform(-1, 1);
  const wearsGlasses = face.accessories.glasses !== null && rng.next() < face.accessories.glasses.wearRate;

  const illumination = {
    angle: rng.uniform(0, 2 * Math.PI),
    strength: rng.uniform(0, 0.45),
    brightness: Math.exp(rng.uniform(-0.22, 0.18)),
    contrast: Math.exp(rng.uniform(-0.2, 0.12)),
    cast: [1 + clamp(0.04 * rng.normal(), -0.1, 0.1), 1 + clamp(0.03 * rng.normal(), -0.08, 0.08), 1 + clamp(0.04 * rng.normal(), -0.1, 0.1)] as Rgb,
  };

  const blobs: Blob[] = [];
  const blobCount = 2 + rng.int(3);
  for (let i = 0; i < blobCount; i++) {
    blobs.push({ x: rng.uniform(0, 112), y: rng.uniform(0, 112), rx: rng.uniform(6, 36), ry: rng.uniform(6, 36), color: mutedColor(rng), opacity: rng.uniform(0.3, 0.9) });
  }
  const background = { colorA: mutedColor(rng), colorB: mutedColor(rng), angle: rng.uniform(0, 360), edge: rng.uniform(30, 80), blobs };
  const clothing = randomColor(rng, 10, 240);

  // clean capture: mild degradations only
  let blur112 = MILD_MAX * SEVERITY_SCALE.blur112 * rng.next() ** 2;
  let noise = MILD_MAX * SEVERITY_SCALE.noise * rng.next();
  let resolution112 = 112;
  let jpegQuality = Math.round(opts.jpegQuality * rng.uniform(0.75, 1));
  let occlusion = occlusionOf(rng, 'none', 0, face);
  const heavy: Degradation[] = [];

  if (!lowQuality) {
    const minor = rng.next();
    if (minor < 0.1) resolution112 = severityToValue('lowRes', rng.uniform(0, MILD_MAX * 0.98));
    else if (minor < 0.15) occlusion = occlusionOf(rng, 'hat', rng.uniform(0.05, 0.12), face);
    else if (minor < 0.2) occlusion = occlusionOf(rng, 'hand', rng.uniform(0.1, MILD_MAX), face);
  } else {
    const count = pickOne(rng, [1, 1, 1, 1, 1, 1, 2, 2, 2, 3]);
    const pool: Degradation[] = ['blur', 'lowRes', 'noise', 'occlusion'];
    rng.shuffle(pool);
    heavy.push(...pool.slice(0, count));
    for (const kind of heavy) {
      const s = rng.uniform(HEAVY_MIN, 1);
      if (kind === 'blur') blur112 = severityToValue('blur', s);
      else if (kind === 'noise') noise = severityToValue('noise', s);
      else if (kind === 'lowRes') resolution112 = severityToValue('lowRes', s);
      else occlusion = occlusionOf(rng, pickOne(rng, ['sunglasses', 'mask', 'hand'] as const), s, face);
    }
    if (rng.next() < 0.5) jpegQuality = Math.round(opts.jpegQuality * rng.uniform(0.25, 0.6));
  }
  jpegQuality = clamp(jpegQuality, 5, 100);

  return { lowQuality, heavy, pose, expression, hairJitter, wearsGlasses, illumination, background, clothing, occlusion, blur112, resolution112, noise, jpegQuality };
}

/** The normalised severities in [0,1] of the four degradations that define low quality. */
export function severities(v: ImageVariation): Record<Degradation, number> {
  return {
    blur: clamp(v.blur112 / SEVERITY_SCALE.blur112, 0, 1),
    lowRes: clamp((112 - v.resolution112) / (112 - SEVERITY_SCALE.minResolution112), 0, 1),
    noise: clamp(v.noise / SEVERITY_SCALE.noise, 0, 1),
    occlusion: v.occlusion.severity,
  };
}

function pickOne<T>(rng: Rng, options: readonly T[]): T {
  return options[rng.int(options.length)];
}
