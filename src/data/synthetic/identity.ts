// Stable appearance of one synthetic identity: face shape, skin, hair, facial features, marks and
// accessories. Coordinates are in a 112x112 canvas (the ArcFace crop: eyes near y=52, mouth near y=90),
// x measured from the vertical mid-line.
import { resolveRenderOptions, type RenderOptions } from './options.js';
import { identityTraits, type TraitSource } from './traits.js';

export type Rgb = readonly [number, number, number];

export type HairStyle = 'bald' | 'buzz' | 'short' | 'sidePart' | 'long' | 'curly' | 'bun' | 'receding';
export type FacialHairStyle = 'none' | 'stubble' | 'moustache' | 'goatee' | 'beard';
export type MarkKind = 'mole' | 'freckles' | 'scar' | 'patch';
export type GlassesShape = 'round' | 'rect' | 'aviator';

export interface Mark {
  kind: MarkKind;
  /** Position relative to the face: x in [-1,1] of the half-width, y in canvas units. */
  x: number;
  y: number;
  size: number;
  angle: number;
  darkness: number;
}

export interface FaceParams {
  id: number;
  family: number;
  shape: {
    /** Skull top, temple/cheek/jaw/chin half-widths and chin bottom. */
    top: number;
    templeHalfWidth: number;
    cheekHalfWidth: number;
    jawHalfWidth: number;
    chinHalfWidth: number;
    chinY: number;
  };
  skin: { color: Rgb; shading: number };
  hair: { style: HairStyle; color: Rgb; hairlineY: number; volume: number; part: number; length: number };
  facialHair: { style: FacialHairStyle; density: number };
  eyes: { y: number; halfSpacing: number; width: number; height: number; tilt: number; irisColor: Rgb; irisSize: number; lidDarkness: number };
  brows: { gap: number; thickness: number; length: number; arch: number; angle: number; color: Rgb };
  nose: { length: number; width: number; bridge: number; tipSize: number };
  mouth: { y: number; width: number; upperLip: number; lowerLip: number; color: Rgb; restingSmile: number };
  ears: { size: number; y: number; protrusion: number };
  marks: Mark[];
  accessories: {
    glasses: { shape: GlassesShape; color: Rgb; thickness: number; wearRate: number } | null;
    earrings: { color: Rgb } | null;
  };
}

const SKIN_STOPS: Rgb[] = [
  [246, 218, 196],
  [226, 184, 150],
  [196, 142, 104],
  [146, 98, 66],
  [92, 60, 42],
];

const HAIR_COLORS: Rgb[] = [
  [24, 20, 18],
  [56, 38, 28],
  [98, 68, 44],
  [150, 110, 70],
  [212, 178, 118],
  [150, 66, 34],
  [150, 148, 146],
  [222, 222, 216],
];
const HAIR_WEIGHTS = [28, 24, 16, 10, 8, 4, 6, 4];

const IRIS_COLORS: Rgb[] = [
  [60, 38, 24],
  [100, 66, 34],
  [70, 110, 150],
  [80, 120, 80],
  [120, 110, 70],
  [40, 40, 44],
];

const FRAME_COLORS: Rgb[] = [
  [20, 20, 20],
  [90, 60, 30],
  [170, 150, 90],
  [150, 150, 160],
  [120, 30, 40],
  [30, 50, 110],
];

const clampByte = (v: number) => Math.max(0, Math.min(255, v));

function lerpRgb(stops: readonly Rgb[], t: number): Rgb {
  const x = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

function shift(c: Rgb, t: TraitSource, name: string, amount: number): Rgb {
  const d = t.num(`${name}.l`, -amount, amount);
  const r = t.num(`${name}.r`, -amount / 2, amount / 2);
  return [clampByte(c[0] + d + r), clampByte(c[1] + d), clampByte(c[2] + d - r)];
}

function mix(a: Rgb, b: Rgb, f: number): Rgb {
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** The family of an identity: `familySize` consecutive ids form one family of look-alikes. */
export function familyOf(id: number, familySize: number): number {
  return Math.floor(id / familySize);
}

function drawMarks(t: TraitSource): Mark[] {
  const count = t.pick('marks.count', [0, 1, 2, 3], [30, 35, 22, 13]);
  const marks: Mark[] = [];
  for (let i = 0; i < count; i++) {
    const p = `marks.${i}`;
    marks.push({
      kind: t.pick(`${p}.kind`, ['mole', 'freckles', 'scar', 'patch'] as const, [50, 20, 15, 15]),
      x: t.num(`${p}.x`, -0.8, 0.8),
      y: t.num(`${p}.y`, 38, 96),
      size: t.num(`${p}.size`, 0.6, 1.6),
      angle: t.num(`${p}.angle`, -60, 60),
      darkness: t.num(`${p}.dark`, 0.35, 0.9),
    });
  }
  return marks;
}

/**
 * The stable parameters of identity `id` under master seed `seed`. Identities of one family (see
 * `familyOf`) share most traits with small perturbations, which makes hard negatives.
 */
export function identityParams(seed: number, id: number, opts: RenderOptions = {}): FaceParams {
  const { familySize } = resolveRenderOptions(opts);
  const family = familyOf(id, familySize);
  const t = identityTraits(seed, family, id);

  const cheekHalfWidth = t.num('shape.cheek', 33, 43);
  const skinColor = shift(lerpRgb(SKIN_STOPS, t.num('skin.tone', 0, 1)), t, 'skin.tint', 14);
  const hairColor = shift(t.pick('hair.base', HAIR_COLORS, HAIR_WEIGHTS), t, 'hair.tint', 22);
  const style = t.pick('hair.style', ['bald', 'buzz', 'short', 'sidePart', 'long', 'curly', 'bun', 'receding'] as const, [
    6, 10, 22, 16, 22, 10, 6, 8,
  ]);
  const eyeY = t.num('eyes.y', 47, 55);
  const hasGlasses = t.chance('glasses.has', 0.22);

  return {
    id,
    family,
    shape: {
      top: t.num('shape.top', 2, 14),
      templeHalfWidth: cheekHalfWidth * t.num('shape.temple', 0.86, 1.0),
      cheekHalfWidth,
      jawHalfWidth: cheekHalfWidth * t.num('shape.jaw', 0.62, 0.92),
      chinHalfWidth: t.num('shape.chin', 6, 15),
      chinY: t.num('shape.chinY', 104, 116),
    },
    skin: { color: skinColor, shading: t.num('skin.shading', 0.08, 0.22) },
    hair: {
      style,
      color: hairColor,
      hairlineY: t.num('hair.line', 18, 32) + (style === 'receding' ? 8 : 0),
      volume: t.num('hair.volume', 2, 10),
      part: t.num('hair.part', -1, 1),
      length: t.num('hair.length', 0, 1),
    },
    facialHair: {
      style: t.pick('beard.style', ['none', 'stubble', 'moustache', 'goatee', 'beard'] as const, [58, 14, 9, 8, 11]),
      density: t.num('beard.density', 0.45, 1),
    },
    eyes: {
      y: eyeY,
      halfSpacing: t.num('eyes.spacing', 14, 20),
      width: t.num('eyes.width', 9, 13.5),
      height: t.num('eyes.height', 3.4, 6),
      tilt: t.num('eyes.tilt', -9, 9),
      irisColor: shift(t.pick('eyes.iris', IRIS_COLORS, [40, 20, 14, 10, 8, 8]), t, 'eyes.irisTint', 16),
      irisSize: t.num('eyes.irisSize', 0.32, 0.48),
      lidDarkness: t.num('eyes.lid', 0.2, 0.7),
    },
    brows: {
      gap: t.num('brows.gap', 6, 11),
      thickness: t.num('brows.thick', 1.2, 3.8),
      length: t.num('brows.length', 10, 17),
      arch: t.num('brows.arch', 0, 4.5),
      angle: t.num('brows.angle', -12, 12),
      color: mix(hairColor, [20, 16, 14], t.num('brows.dark', 0.1, 0.6)),
    },
    nose: {
      length: t.num('nose.length', 14, 24),
      width: t.num('nose.width', 8, 15),
      bridge: t.num('nose.bridge', 0.2, 1),
      tipSize: t.num('nose.tip', 2, 4.5),
    },
    mouth: {
      y: Math.min(94, eyeY + t.num('mouth.drop', 32, 40)),
      width: t.num('mouth.width', 14, 23),
      upperLip: t.num('mouth.upper', 1.4, 4),
      lowerLip: t.num('mouth.lower', 2, 5.2),
      color: mix(skinColor, [170, 60, 70], t.num('mouth.red', 0.25, 0.6)),
      restingSmile: t.num('mouth.smile', -0.3, 0.4),
    },
    ears: { size: t.num('ears.size', 12, 20), y: t.num('ears.y', -2, 6), protrusion: t.num('ears.out', 1, 6) },
    marks: drawMarks(t),
    accessories: {
      glasses: hasGlasses
        ? {
            shape: t.pick('glasses.shape', ['round', 'rect', 'aviator'] as const),
            color: t.pick('glasses.color', FRAME_COLORS),
            thickness: t.num('glasses.thick', 0.8, 2.2),
            wearRate: t.num('glasses.wear', 0.6, 0.95),
          }
        : null,
      earrings: t.chance('earrings.has', 0.14) ? { color: t.pick('earrings.color', FRAME_COLORS) } : null,
    },
  };
}
