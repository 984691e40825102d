// The library's face functions in Node: detectFaces() (boxes, scores, five landmarks), alignFace() (the
// ArcFace crop for five landmarks) and alignLargestFace() (both, for the face an embedding is wanted of).
// Images are files, encoded bytes or decoded RGB; models load once, on the current tfjs backend.
import { initEngine } from '../engine/index.js';
import { AttfcError } from '../errors.js';
import { alignRgb } from './align.js';
import { readRgbImage, type FaceImageInput, type RgbImage } from './image.js';
import { loadFaceModels } from './models.js';
import { defaultMinFaceSize, detectFacesInPixels, type DetectOptions, type DetectedFace } from './pipeline.js';

/** Every face in an image, best detector score first (coordinates in the upright image's pixels). */
export async function detectFaces(image: FaceImageInput, options: DetectOptions = {}): Promise<DetectedFace[]> {
  const img = await readRgbImage(image);
  return detectFacesInImage(img, options);
}

/** detectFaces() on pixels already decoded (the CLI decodes once for detection and cropping). */
export async function detectFacesInImage(img: RgbImage, options: DetectOptions = {}): Promise<DetectedFace[]> {
  await initEngine({ log: false });
  return detectFacesInPixels(await loadFaceModels(), img, options);
}

/** The size x size ArcFace crop (RGB) of the face with these five landmarks (as detectFaces() gives them). */
export async function alignFace(image: FaceImageInput, landmarks5: readonly (readonly [number, number])[], size = 112): Promise<RgbImage> {
  if (landmarks5.length !== 5) throw new AttfcError(`alignFace: expected 5 landmarks [x, y], got ${landmarks5.length}`);
  const img = await readRgbImage(image);
  return { width: size, height: size, data: alignRgb(img.data, img.width, img.height, landmarks5.flat(), size) };
}

/** The face with the largest box, or null. */
export function largestFace(faces: readonly DetectedFace[]): DetectedFace | null {
  let best: DetectedFace | null = null;
  for (const f of faces) if (!best || f.box[2] * f.box[3] > best.box[2] * best.box[3]) best = f;
  return best;
}

/** Why no face was found, for one line of output: the size searched for, so a tiny face is explained. */
export function noFaceMessage(img: { width: number; height: number }, options: DetectOptions = {}): string {
  const min = Math.round(options.minFaceSize ?? defaultMinFaceSize(img.width, img.height));
  return `no face found (searched ${img.width}x${img.height} for faces of ${min} px and larger)`;
}

/**
 * The aligned size x size crop of the largest face in an image, with that face and the image's size;
 * `face` and `crop` are null when it has none (noFaceMessage() says so in one line).
 */
export async function alignLargestFace(
  image: FaceImageInput,
  size: number,
  what: string,
  options: DetectOptions = {},
): Promise<{ crop: RgbImage | null; face: DetectedFace | null; width: number; height: number }> {
  const img = await readRgbImage(image, what);
  const face = largestFace(await detectFacesInImage(img, options));
  const crop = face && { width: size, height: size, data: alignRgb(img.data, img.width, img.height, face.landmarks5.flat(), size) };
  return { crop, face, width: img.width, height: img.height };
}
