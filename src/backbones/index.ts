// Face backbones (IResNet, MobileFaceNet) on tfjs-core ops, and their TensorFlow.js model export.
export type { Backbone, BackboneOptions, NamedVariable, ResolvedBackboneOptions } from './types.js';
export {
  BACKBONE_NAMES,
  DEFAULT_BACKBONE_OPTIONS,
  MIN_INPUT_SIZE,
  createBackbone,
  backboneParamCount,
  backboneSpec,
  isBackboneName,
  resolveBackboneOptions,
} from './registry.js';
export type { BackboneName } from './registry.js';
export type { ArchitectureSpec, LayerNode, ParamSpec } from './spec.js';
export { paramSpecs } from './spec.js';
export { toLayersModel } from './layersExport.js';
export { saveEmbeddingModel, loadEmbeddingModel, INPUT_NORMALIZATION } from './embeddingModel.js';
export { fileSaveHandler, fileLoadHandler, updateModelMetadata } from './fileIO.js';
export { backboneWeights, assignBackboneWeights, architectureFromMetadata, backboneFromLayersModel, loadBackboneFromModelDir } from './weightsIO.js';
