// ONNX in and out: importing insightface recognition models (IResNet, MobileFaceNet) as attfc backbones
// and writing attfc backbones as ONNX for onnxruntime.
export { readOnnxBackbone, importedBackbone, importMetadata, writeImportedModel } from './importer.js';
export type { OnnxImport } from './importer.js';
export { backboneToOnnx, ONNX_OPSET, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from './writer.js';
export type { OnnxExportOptions } from './writer.js';
export { readGraph, SUPPORTED_OPERATORS } from './graph.js';
export type { ReadGraph, GraphOp } from './graph.js';
export { recogniseArchitecture } from './recognise.js';
export type { RecognisedArchitecture } from './recognise.js';
export { mapWeights, convWeightFromOnnx, convWeightToOnnx } from './weights.js';
