// The verification protocol on a network as initialisation leaves it: the reference that says what
// training added (the demo's report, bench:accuracy's baseline, the trainer's test).
import { createBackbone, resolveBackboneOptions, type BackboneOptions } from '../backbones/index.js';
import { evaluateBin, type VerificationResult } from './evaluateBin.js';

/**
 * `bin`'s pairs embedded by a freshly initialised `backbone` (same options and seed as a run would
 * build). Batch norm uses batch statistics: an untrained network's running statistics are only their
 * initial 0 and 1.
 */
export async function evaluateUntrained(backbone: string, options: BackboneOptions, bin: string, batchSize: number): Promise<VerificationResult> {
  const net = createBackbone(backbone, options);
  try {
    return await evaluateBin({ inputSize: resolveBackboneOptions(options).inputSize, embed: (x) => net.apply(x, true) }, bin, { batchSize });
  } finally {
    net.dispose();
  }
}
