// The detector and landmark graph models, read from the files the @vladmandic/human npm package ships
// (models/blazeface.json + .bin, models/facemesh.json + .bin; MediaPipe's models, Apache-2.0). Loaded
// from disk once per process, never from the network.
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel } from '@tensorflow/tfjs-converter';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AttfcError } from '../errors.js';
import { FACE_MODEL_FILES, faceModelDir } from './modelFiles.js';
import type { FaceModels } from './pipeline.js';

async function loadFromDisk(file: string): Promise<Awaited<ReturnType<typeof loadGraphModel>>> {
  let json: { modelTopology: unknown; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[]; format?: string; generatedBy?: string; convertedBy?: string; signature?: unknown; userDefinedMetadata?: Record<string, object> };
  let weights: Buffer;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as typeof json;
    weights = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(path.join(path.dirname(file), p)))));
  } catch (e) {
    throw new AttfcError(`${file}: cannot read the face model (${(e as Error).message.split('\n')[0]}); reinstall attfc's dependencies (npm ci)`);
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? undefined,
    signature: json.signature as tf.io.ModelArtifacts['signature'],
    userDefinedMetadata: json.userDefinedMetadata,
  };
  return loadGraphModel(tf.io.fromMemory(artifacts));
}

let loaded: Promise<FaceModels> | null = null;
let loadedOn: string | null = null;

/** The face models on the current tfjs backend (loaded once; reloaded if the backend changed). */
export function loadFaceModels(): Promise<FaceModels> {
  if (!loaded || loadedOn !== tf.getBackend()) {
    loadedOn = tf.getBackend();
    const dir = faceModelDir();
    loaded = Promise.all([loadFromDisk(path.join(dir, FACE_MODEL_FILES.detector)), loadFromDisk(path.join(dir, FACE_MODEL_FILES.mesh))]).then(
      ([detector, mesh]) => ({ tf, detector, mesh }),
    );
    loaded.catch(() => (loaded = null));
  }
  return loaded;
}
