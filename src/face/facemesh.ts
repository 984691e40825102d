// FaceMesh (MediaPipe's 468-point face landmark model, 192x192 input) as shipped in @vladmandic/human's
// models/facemesh.json, and the five ArcFace points taken from its mesh. Imports only types, so the
// browser page loads this very file (compiled); it must never read files or use Node.
import type * as TF from '@tensorflow/tfjs-core';
import type { GraphModel } from '@tensorflow/tfjs-converter';

/** The landmark model's input side in pixels. */
export const FACEMESH_SIZE = 192;
export const MESH_POINTS = 468;

// Mesh indices (MediaPipe's canonical face topology). The subject's right eye appears on the image's
// left in an unmirrored photo, so it is the template's first point.
const RIGHT_EYE_CONTOUR = [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173];
const LEFT_EYE_CONTOUR = [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398];
const NOSE_TIP = 1;
const MOUTH_RIGHT_CORNER = 61; // the subject's right: the image's left
const MOUTH_LEFT_CORNER = 291;

/** Mesh points [x, y] (468 of them), in the crop's pixels (continuous: 0 is the crop's left edge). */
export interface MeshResult {
  points: Float32Array; // x0, y0, x1, y1, ...
  /** The model's own "is this a face" probability for the crop. */
  faceScore: number;
}

/** Runs FaceMesh on one 192x192 RGB crop (bytes, row-major); inputs scaled to [0, 1] as it was trained. */
export async function runFaceMesh(tf: typeof TF, model: GraphModel, rgb: Uint8Array): Promise<MeshResult> {
  const n = FACEMESH_SIZE * FACEMESH_SIZE * 3;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rgb[i] / 255;
  const [mesh, flag] = tf.tidy(
    () => model.execute(tf.tensor4d(x, [1, FACEMESH_SIZE, FACEMESH_SIZE, 3]), ['output_mesh', 'output_faceflag']) as TF.Tensor[],
  );
  try {
    const [m, f] = await Promise.all([mesh.data() as Promise<Float32Array>, flag.data() as Promise<Float32Array>]);
    const points = new Float32Array(2 * MESH_POINTS);
    for (let i = 0; i < MESH_POINTS; i++) {
      points[2 * i] = m[3 * i];
      points[2 * i + 1] = m[3 * i + 1];
    }
    return { points, faceScore: f[0] };
  } finally {
    tf.dispose([mesh, flag]);
  }
}

function mean(points: ArrayLike<number>, indices: readonly number[]): [number, number] {
  let x = 0;
  let y = 0;
  for (const i of indices) {
    x += points[2 * i];
    y += points[2 * i + 1];
  }
  return [x / indices.length, y / indices.length];
}

/**
 * The five ArcFace points from a mesh, in the template's order (image left to right for an upright,
 * unmirrored face): right eye centre, left eye centre (means of the eye contours), nose tip, right
 * and left mouth corners. Flat [x1, y1, ..., x5, y5] in the mesh's coordinates.
 */
export function fivePointsFromMesh(points: ArrayLike<number>): number[] {
  const at = (i: number): [number, number] => [points[2 * i], points[2 * i + 1]];
  return [...mean(points, RIGHT_EYE_CONTOUR), ...mean(points, LEFT_EYE_CONTOUR), ...at(NOSE_TIP), ...at(MOUTH_RIGHT_CORNER), ...at(MOUTH_LEFT_CORNER)];
}

/** Indices of the two eye-corner pairs used to level the face for the second landmark pass. */
export const EYE_OUTER_CORNERS = { right: 33, left: 263 } as const;
