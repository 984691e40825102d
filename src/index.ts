// attfc: train face-recognition models on huge identity sets on one machine with the AttFC head.
// The public API, one entry point.

// Engine: backend choice, kernel pack, memory guard, batch-norm, leak checks.
export * from './engine/index.js';
export { registerKernelPack, unregisterKernelPack, KERNEL_PACK } from './engine/kernels/index.js';

// Backbones and the TensorFlow.js model export.
export * from './backbones/index.js';

// ONNX: import insightface recognition models, export attfc models for onnxruntime.
export * from './onnx/index.js';

// Heads: one interface; margin losses; full FC, Partial FC, AttFC (+ its class encoder).
export type { Head, HeadKind, HeadInput, HeadState, SgdSettings } from './heads/types.js';
export { ARCFACE, COSFACE, marginTargetLogit, marginLogits, marginSoftmaxLoss, validateMargin, l2Normalize } from './heads/margin.js';
export type { MarginOptions } from './heads/margin.js';
export { FullFcHead, estimateFullFcHeap } from './heads/fullFc.js';
export type { FullFcOptions, FullFcHeapEstimate } from './heads/fullFc.js';
export { PartialFcHead } from './heads/partialFc.js';
export type { PartialFcOptions, PartialFcSample } from './heads/partialFc.js';
export * from './heads/attfc/index.js';

// Data: datasets (RecordIO, image folders), writers, inspection, synthetic faces, sampler, pipeline.
export { openDataset, locateDataset, checkImage, RecordIODataset } from './data/dataset.js';
export type { FaceDataset, DatasetLocation, RecordIOLayout } from './data/dataset.js';
export { InsightfaceRecWriter, RecordIOWriter } from './data/recordioWriter.js';
export { RecordIOFile, encodeImageRecord, parseImageRecord, frameRecord, readProperty, RECORDIO_MAGIC } from './data/recordio.js';
export { ImageFolderDataset, scanImageFolder } from './data/imageFolder.js';
export { inspect } from './data/inspect.js';
export type { InspectReport, InspectOptions } from './data/inspect.js';
export { pack } from './data/pack.js';
export type { PackReport } from './data/pack.js';
export * from './data/synthetic/index.js';
export { IdentitySampler, deriveSeed } from './data/sampler.js';
export type { SamplerState, SampledBatch } from './data/sampler.js';
export { decodeToRgb } from './data/decode.js';
export { DataPipeline } from './data/pipeline.js';
export type { DataPipelineOptions, Batch, PipelineState, PipelineStats } from './data/pipeline.js';

// Training.
export { train } from './train/trainer.js';
export type { TrainHandle, TrainResult, TrainOptions, StepMetrics, VerifyEvent } from './train/trainer.js';
export { parseTrainConfig, resumedTrainConfig, readConfigFile, TrainConfigSchema, RESUME_MUTABLE_KEYS, HEADS, BACKBONES } from './train/config.js';
export type { TrainConfig, TrainConfigInput } from './train/config.js';
export { learningRate } from './train/schedule.js';
export { Sgd, clipByGlobalNorm } from './train/sgd.js';
export { saveCheckpoint, loadCheckpoint, listCheckpoints, resolveCheckpoint } from './train/checkpoint.js';

// Evaluation: .bin verification sets, IJB-B/C, ROC plots, embeddings.
export * from './eval/index.js';
export { loadEmbedder } from './embed.js';
export type { FaceEmbedder, ImageInput, Verification, EmbedOptions } from './embed.js';

// Faces in photos: detection (BlazeFace), five landmarks (FaceMesh), ArcFace alignment.
export * from './face/index.js';

export { AttfcError } from './errors.js';
export { Rng } from './util/rng.js';
