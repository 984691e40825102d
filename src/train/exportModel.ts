// Export: writes the trained f_q as a TensorFlow.js embedding model (with the metadata `attfc eval` and
// loadEmbedder read) into the run's model/ folder, replacing a previous export only once the new one is
// complete. Weights holding a NaN or an infinity (a diverged run) are refused, not exported.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { saveEmbeddingModel, INPUT_NORMALIZATION, type Backbone } from '../backbones/index.js';
import type { VerificationResult } from '../eval/evaluateBin.js';
import { thresholdRecord } from '../eval/threshold.js';
import { backboneToOnnx } from '../onnx/writer.js';
import { AttfcError } from '../errors.js';
import { nonFiniteValue } from '../util/finite.js';
import type { TrainConfig } from './config.js';
import { packageVersion } from '../util/packageVersion.js';

/**
 * Returns the model folder. `verification`: the last step's results, whose first set chooses the
 * threshold loadEmbedder().verify() uses.
 */
export async function exportEmbeddingModel(fq: Backbone, c: TrainConfig, steps: number, runDir: string, verification: VerificationResult[] = []): Promise<string> {
  for (const v of fq.variables()) {
    const bad = nonFiniteValue(v.variable.dataSync() as Float32Array);
    if (bad) throw new AttfcError(`training diverged: f_q's ${v.name} holds a non-finite value (${bad}) at step ${steps}; no model exported; lower --lr or add --warmup-steps`);
  }
  const modelDir = path.join(runDir, 'model');
  const tmp = `${modelDir}.tmp-${process.pid}`;
  await saveEmbeddingModel(fq, tmp, {
    inputSize: c.inputSize,
    normalization: INPUT_NORMALIZATION,
    backbone: c.backbone,
    widthMultiplier: c.widthMultiplier,
    embeddingSize: c.embeddingSize,
    ...(c.initFrom ? { initFrom: c.initFrom } : {}),
    head: c.head,
    steps,
    trainedOn: c.data,
    ...(verification.length ? { verification: thresholdRecord(verification[0], { file: c.verify[0], chosenBy: 'training', step: steps }) } : {}),
  });
  if (c.export === 'onnx') writeFileSync(path.join(tmp, 'model.onnx'), backboneToOnnx(fq, { producerVersion: packageVersion() }));
  replaceDir(tmp, modelDir);
  return modelDir;
}

function replaceDir(tmp: string, final: string): void {
  const old = `${final}.old-${process.pid}`;
  try {
    renameSync(final, old);
  } catch {
    /* no previous export */
  }
  renameSync(tmp, final);
  rmSync(old, { recursive: true, force: true });
}
