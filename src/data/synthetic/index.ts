// Synthetic face-identity generator: the project's built-in dataset (see docs/synthetic.md).
export { synthesize, isSyntheticSet, writeSyntheticVerificationBin, SYNTH_FILES } from './synthesize.js';
export { SyntheticDataset } from './source.js';
export { parseSynthSpec, formatSynthSpec, isSynthSpec, SYNTH_SPEC_SYNTAX } from './spec.js';
export type { SynthSummary } from './synthesize.js';
export { identityParams, familyOf } from './identity.js';
export type { FaceParams, Rgb, HairStyle, FacialHairStyle, Mark, MarkKind, GlassesShape } from './identity.js';
export { renderImage, renderBatch, renderAtTiles, renderPixels, describeImage, ATLAS_TILES } from './render.js';
export type { RenderedImage, ImageDescription, ImageKey } from './render.js';
export { imageVariation, severities } from './variation.js';
export type { ImageVariation, OcclusionKind, Degradation } from './variation.js';
export { qualityScore, LOW_QUALITY_THRESHOLD } from './quality.js';
export { planVerificationPairs, heldOutIds, HARD_NEGATIVE_SHARE } from './pairs.js';
export type { PlannedPair } from './pairs.js';
export { RenderPool } from './pool.js';
export { resolveSynthOptions, resolveRenderOptions, GENERATOR_VERSION } from './options.js';
export type { SynthOptions, RenderOptions, ResolvedSynthOptions, ResolvedRenderOptions } from './options.js';
