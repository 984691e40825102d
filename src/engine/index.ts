export { initEngine, chooseBackend, shutdownEngine, engineInfo, describeEngine, BACKEND_NAMES, DEVICE_NAMES } from './backend.js';
export type { BackendName, EngineOptions, EngineInfo } from './backend.js';
export { batchNormTrain, batchNormInfer } from './batchNorm.js';
export type { BatchStats } from './batchNorm.js';
export { installWasmOomGuard, wasmHeapBytes, memorySnapshot, WasmHeapExhaustedError, WASM_HEAP_MAX_BYTES, formatBytes } from './memory.js';
export { assertNoTensorLeak, countTensorsAcrossSteps } from './leak.js';
export type { LeakReport } from './leak.js';
