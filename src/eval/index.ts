// Evaluation: verification .bin sets (insightface protocol), IJB-B/C, ROC curves and plots, embeddings.
export { readVerificationBin, parseVerificationBin, setNameFromPath } from './binReader.js';
export type { VerificationSet } from './binReader.js';
export { writeVerificationBin, verificationBinChunks } from './binWriter.js';
export type { VerificationPair } from './binWriter.js';
export { unpickle } from './pickle.js';
export { embedderFromLayersModel, embedBatch, embedBatchWithFlip } from './embedder.js';
export type { Embedder, EmbeddedBatch } from './embedder.js';
export { evaluateBin, formatVerificationLine, formatXNormLine } from './evaluateBin.js';
export type { EvaluateBinOptions, VerificationResult } from './evaluateBin.js';
export {
  verificationMetrics,
  tenFoldAccuracy,
  kFoldRanges,
  pairSquaredDistances,
  flipSumNormalized,
  meanEmbeddingNorm,
  THRESHOLD_COUNT,
} from './verification.js';
export type { FoldAccuracy, VerificationMetrics } from './verification.js';
export { bestSimilarityThreshold, pairCosineSimilarities, readVerificationThreshold, thresholdRecord, describeThreshold } from './threshold.js';
export type { VerificationThreshold } from './threshold.js';
export { rocCurve, rocAuc, tarAtFar, tprAtClosestFpr } from './roc.js';
export type { RocCurve } from './roc.js';
export { evaluateIjb, embedIjbImages, readIjbMeta, parsePairFile, poolTemplates, scoreTemplatePairs, ijbMetrics, formatIjbTable, IJB_FARS } from './ijb.js';
export type { IjbTarget, IjbMeta, IjbResult, EvaluateIjbOptions, TemplateFeatures } from './ijb.js';
export { renderRocSvg, writeRocPlot } from './plot.js';
export type { RocSeries, RocPlotOptions } from './plot.js';
export { embedImageFiles } from './embedFiles.js';
export { encodeNpyFloat32, writeNpyFloat32 } from './npy.js';
export { createProgress } from '../util/progress.js';
export type { ProgressFn, CountProgressOptions } from '../util/progress.js';
