// Where the face models are on disk: the files the @vladmandic/human npm package ships in its models/
// folder (MediaPipe's BlazeFace and FaceMesh, Apache-2.0). Paths only: the server that hands them to
// the browser page uses this without loading TensorFlow.js.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The graph model files used, by role (each .json names its weight file beside it). */
export const FACE_MODEL_FILES = { detector: 'blazeface.json', mesh: 'facemesh.json' } as const;

/** Every file the two models need: their .json and the .bin weights they name. */
export const FACE_MODEL_ALL_FILES = ['blazeface.json', 'blazeface.bin', 'facemesh.json', 'facemesh.bin'] as const;

/** The folder of @vladmandic/human's models (its package.json "exports" hides the file, so found via its main entry). */
export function faceModelDir(): string {
  return path.join(path.dirname(require.resolve('@vladmandic/human')), '..', 'models');
}
