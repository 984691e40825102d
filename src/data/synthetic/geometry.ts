// Small SVG building helpers: number formatting, colours, smooth closed paths.
import type { Rgb } from './identity.js';

export type Point = readonly [number, number];

/** Shortest stable text for a coordinate (2 decimals keeps SVGs small and outputs exact). */
export function num(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/** `#rrggbb` of a colour, optionally scaled in brightness first. */
export function hex(c: Rgb, gain = 1): string {
  let s = '#';
  for (const v of c) s += Math.max(0, Math.min(255, Math.round(v * gain))).toString(16).padStart(2, '0');
  return s;
}

/** A smooth closed curve through `points` (Catmull-Rom converted to cubic Béziers). */
export function smoothClosedPath(points: readonly Point[]): string {
  const n = points.length;
  const at = (i: number) => points[((i % n) + n) % n];
  let d = `M${num(points[0][0])} ${num(points[0][1])}`;
  for (let i = 0; i < n; i++) {
    const p0 = at(i - 1);
    const p1 = at(i);
    const p2 = at(i + 1);
    const p3 = at(i + 2);
    const c1x = p1[0] + (p2[0] - p0[0]) / 6;
    const c1y = p1[1] + (p2[1] - p0[1]) / 6;
    const c2x = p2[0] - (p3[0] - p1[0]) / 6;
    const c2y = p2[1] - (p3[1] - p1[1]) / 6;
    d += `C${num(c1x)} ${num(c1y)} ${num(c2x)} ${num(c2y)} ${num(p2[0])} ${num(p2[1])}`;
  }
  return `${d}Z`;
}

/** Mirror-symmetric outline: right-half points from top to bottom, mirrored for the left half. */
export function symmetricOutline(rightHalf: readonly Point[], mapX: (x: number, y: number) => number): Point[] {
  const right = rightHalf.map(([x, y]) => [mapX(x, y), y] as Point);
  const left = rightHalf
    .slice(1, -1)
    .reverse()
    .map(([x, y]) => [mapX(-x, y), y] as Point);
  return [...right, ...left];
}
