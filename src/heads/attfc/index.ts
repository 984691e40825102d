// The AttFC head and its parts: attention loader (GCC), DCC ring buffer, chunked DCC softmax, EMA class encoder.
export { AttFcHead, defaultQueueSize, resolveQueueSize } from './attfcHead.js';
export type { AttFcHeadOptions } from './attfcHead.js';
export { ClassEncoder, DEFAULT_CLASS_ENCODER_MOMENTUM } from './classEncoder.js';
export type { ClassEncoderState } from './classEncoder.js';
export { ATTENTION_MODES, attentionWeights, generateClassCentres, attentionStats } from './attention.js';
export type { AttentionMode, AttentionOptions, ClassCentres, AttentionStats } from './attention.js';
export { DynamicClassContainer, DEFAULT_CHUNK_SLOTS, placeholderLabel } from './dcc.js';
export type { DccOptions } from './dcc.js';
export { DccDeviceChunks, DEFAULT_DEVICE_BUDGET_BYTES, planPlacement, estimateDeviceBytes } from './deviceChunks.js';
export type { ChunkPlacement, DeviceChunk } from './deviceChunks.js';
export { ScaledExp, MAX_EXP_SCALE } from './fastExp.js';
export { dccSoftmax } from './dccSoftmax.js';
export type { DccSoftmaxInput, DccSoftmaxResult } from './dccSoftmax.js';
