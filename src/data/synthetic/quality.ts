// Image quality score in [0,1] (1 = clean), computed from the variation that produced the image:
// the product of one factor per degradation (blur, low resolution, noise, occlusion) times a factor for
// pose, lighting, compression and closed eyes. A heavy degradation (severity >= HEAVY_MIN) alone caps
// quality at 0.45; everything a clean image can have (default JPEG quality) keeps it above 0.58, so
// LOW_QUALITY_THRESHOLD separates the two groups exactly, and stacked heavy degradations score lower.
import { severities, type ImageVariation } from './variation.js';

/** Images with quality below this were drawn as low-quality; clean images are always at or above it. */
export const LOW_QUALITY_THRESHOLD = 0.5;

const DEGRADATION_WEIGHT = 0.9;
const DEGRADATION_POWER = 1.5;

/** Penalty of one degradation with normalised severity s: convex, so mild ones cost little. */
function degradationPenalty(s: number): number {
  return DEGRADATION_WEIGHT * s ** DEGRADATION_POWER;
}

/** Quality of an image in [0,1]. */
export function qualityScore(v: ImageVariation): number {
  let q = 1;
  for (const s of Object.values(severities(v))) q *= 1 - degradationPenalty(s);
  let penalty = 0.1 * Math.abs(v.pose.yaw) + 0.003 * Math.abs(v.pose.roll);
  penalty += 0.06 * v.illumination.strength + 0.1 * Math.abs(Math.log(v.illumination.brightness)) + 0.05 * Math.abs(Math.log(v.illumination.contrast));
  penalty += 0.2 * Math.max(0, 1 - v.jpegQuality / 100);
  penalty += 0.04 * Math.min(1, v.expression.eyeClosure);
  return Math.max(0, Math.min(1, q * (1 - penalty)));
}
