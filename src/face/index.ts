// Face detection, five landmarks and ArcFace alignment: photos in, aligned face crops out.
export { detectFaces, detectFacesInImage, alignFace, alignLargestFace, largestFace, noFaceMessage } from './detect.js';
export { readRgbImage, encodeRgb, MAX_PIXELS } from './image.js';
export type { RgbImage, FaceImageInput } from './image.js';
export { detectFacesInPixels, planWindows, defaultMinFaceSize } from './pipeline.js';
export type { DetectedFace, DetectOptions, FaceModels, RgbPixels } from './pipeline.js';
export { loadFaceModels } from './models.js';
export { faceModelDir, FACE_MODEL_FILES } from './modelFiles.js';
export { alignFiles, listAlignInputs } from './alignFiles.js';
export type { AlignedImage, AlignFilesOptions, AlignInput } from './alignFiles.js';
export { estimateSimilarity, warpAffineBilinear, alignRgb, arcfaceTemplate, ARCFACE_TEMPLATE_112 } from './align.js';
export type { Affine } from './align.js';
