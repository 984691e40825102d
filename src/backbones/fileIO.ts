// Minimal file:// IOHandlers for tfjs models in Node (tfjs-core only ships them with tfjs-node):
// dir/model.json in the standard layers-model format plus one weights file with a relative path.
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AttfcError } from '../errors.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

/** Writes `data` next to its final name, then renames it into place so readers never see a partial file. */
async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/** Saves model artifacts to `dir` (created if missing); `userDefinedMetadata` goes into model.json. */
export function fileSaveHandler(dir: string, userDefinedMetadata?: Record<string, unknown>): tf.io.IOHandler {
  return tf.io.withSaveHandler(async (artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
    if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('fileSaveHandler: binary (graph) topologies are not supported');
    await mkdir(dir, { recursive: true });
    const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)));
    const modelJson: tf.io.ModelJSON = {
      format: artifacts.format ?? 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      modelTopology: artifacts.modelTopology ?? {},
      weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
    };
    if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
    const metadata = userDefinedMetadata ?? artifacts.userDefinedMetadata;
    if (metadata) modelJson.userDefinedMetadata = metadata as Record<string, {}>;
    // Weights first: a model.json in place always refers to complete weights.
    await writeAtomic(path.join(dir, WEIGHTS_FILE), weights);
    await writeAtomic(path.join(dir, MODEL_JSON), JSON.stringify(modelJson));
    return {
      modelArtifactsInfo: {
        dateSaved: new Date(),
        modelTopologyType: 'JSON',
        modelTopologyBytes: JSON.stringify(modelJson.modelTopology).length,
        weightSpecsBytes: JSON.stringify(modelJson.weightsManifest).length,
        weightDataBytes: weights.byteLength,
      },
    };
  });
}

/** Bytes the manifest describes, or null when an entry is quantised or of an unusual dtype. */
function expectedWeightBytes(specs: tf.io.WeightsManifestEntry[]): number | null {
  let n = 0;
  for (const s of specs) {
    if (s.quantization || (s.dtype !== 'float32' && s.dtype !== 'int32')) return null;
    n += 4 * s.shape.reduce((a, b) => a * b, 1);
  }
  return n;
}

/** Loads `dir/model.json` and the weight files its manifest lists (paths relative to dir). */
export function fileLoadHandler(dir: string): tf.io.IOHandler {
  return {
    load: async (): Promise<tf.io.ModelArtifacts> => {
      const jsonPath = path.join(dir, MODEL_JSON);
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
      } catch (e) {
        throw new AttfcError(`${jsonPath}: cannot read the model (${(e as Error).message})`);
      }
      if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest))
        throw new AttfcError(`${jsonPath}: expected "modelTopology" and "weightsManifest" fields`);
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const file = path.join(dir, p);
            let bytes: Buffer;
            try {
              bytes = await readFile(file);
            } catch (e) {
              throw new AttfcError(`${jsonPath}: weights file ${p} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
            }
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
          }
        }
        const data = tf.io.CompositeArrayBuffer.join(buffers);
        const expected = expectedWeightBytes(specs);
        if (expected !== null && expected !== data.byteLength)
          throw new AttfcError(`${jsonPath}: weights manifest needs ${expected} bytes but the weight files hold ${data.byteLength}`);
        return [specs, data];
      });
    },
  };
}

/**
 * Merges `patch` into dir/model.json's userDefinedMetadata (keys in `patch` replace existing ones) and
 * rewrites model.json atomically; the weights are untouched.
 */
export async function updateModelMetadata(dir: string, patch: Record<string, unknown>): Promise<void> {
  const jsonPath = path.join(dir, MODEL_JSON);
  let modelJson: tf.io.ModelJSON;
  try {
    modelJson = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
  } catch (e) {
    throw new AttfcError(`${jsonPath}: cannot read the model (${(e as Error).message})`);
  }
  modelJson.userDefinedMetadata = { ...(modelJson.userDefinedMetadata ?? {}), ...patch } as Record<string, {}>;
  await writeAtomic(jsonPath, JSON.stringify(modelJson));
}
