// Starting a training run from existing weights (`initFrom`): an insightface-style ONNX file or an attfc
// model folder. The model fixes the architecture keys of the config (filled in when not given, refused
// when given differently) and provides f_q's initial weights (AttFC's f_k starts as its copy).
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { AttfcError } from '../errors.js';
import { MOBILEFACENET_CONFIGS } from '../backbones/mobilefacenet.js';
import { MODEL_JSON } from '../backbones/fileIO.js';
import type { Backbone, BackboneOptions } from '../backbones/types.js';
import { architectureFromMetadata, assignBackboneWeights, backboneWeights, loadBackboneFromModelDir } from '../backbones/weightsIO.js';
import { readOnnxBackbone } from '../onnx/importer.js';
import { recalibrateUnfoldedNorms } from '../backbones/unfoldedNorms.js';
import { openDataset } from '../data/dataset.js';
import { decodeToRgb } from '../data/decode.js';
import { normalizeBatch } from '../eval/images.js';

/** Config keys an initial model decides. */
export const INIT_ARCHITECTURE_KEYS = ['backbone', 'inputSize', 'widthMultiplier', 'embeddingSize', 'mbfScale'] as const;

interface InitArchitecture {
  backbone: string;
  options: BackboneOptions;
  /** e.g. "model folder runs/x/model" or "ONNX fr_feature.onnx (MobileFaceNet ...)". */
  label: string;
}

function isOnnxFile(p: string): boolean {
  return path.extname(p).toLowerCase() === '.onnx';
}

function readArchitecture(p: string): InitArchitecture {
  if (isOnnxFile(p)) {
    const imp = readOnnxBackbone(p);
    return { backbone: imp.backbone, options: imp.options, label: `${p} (${imp.description})` };
  }
  let isDir = false;
  try {
    isDir = statSync(p).isDirectory();
  } catch (e) {
    throw new AttfcError(`initFrom ${p}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!isDir) throw new AttfcError(`initFrom ${p}: expected an .onnx file or an attfc model folder (model.json + weights.bin)`);
  const jsonPath = path.join(p, MODEL_JSON);
  let json: { userDefinedMetadata?: Record<string, unknown> };
  try {
    json = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (e) {
    throw new AttfcError(`initFrom ${jsonPath}: cannot read the model (${(e as Error).message.split('\n')[0]})`);
  }
  const { backbone, options } = architectureFromMetadata(json.userDefinedMetadata ?? {}, jsonPath);
  return { backbone, options, label: `model folder ${p}` };
}

/** The architecture value a config key takes for this model (mbfScale: the backbone's own when unset). */
function modelValue(arch: InitArchitecture, key: (typeof INIT_ARCHITECTURE_KEYS)[number]): unknown {
  if (key === 'backbone') return arch.backbone;
  if (key === 'mbfScale') {
    const own = MOBILEFACENET_CONFIGS[arch.backbone as keyof typeof MOBILEFACENET_CONFIGS]?.scale;
    return arch.options.mbfScale ?? own;
  }
  return arch.options[key];
}

/**
 * `raw` with the architecture keys of `raw.initFrom` filled in. A key the caller set to another value
 * is refused with one line naming it (the weights could not fit).
 */
export function withInitArchitecture(raw: Record<string, unknown>): Record<string, unknown> {
  const p = raw.initFrom;
  if (typeof p !== 'string' || p === '') return raw;
  const arch = readArchitecture(p);
  const out: Record<string, unknown> = { ...raw };
  for (const key of INIT_ARCHITECTURE_KEYS) {
    const value = modelValue(arch, key);
    const given = raw[key];
    if (given !== undefined && given !== value)
      throw new AttfcError(`initFrom ${arch.label} has ${key} = ${JSON.stringify(value ?? null)}, but ${key} = ${JSON.stringify(given)} was given; leave ${key} out or match it`);
    if (value !== undefined && (key !== 'mbfScale' || arch.options.mbfScale !== undefined)) out[key] = value;
  }
  return out;
}

/** Training images the unfolded batch norms of an imported model are re-estimated on. */
export const CALIBRATION_IMAGES = 128;

/**
 * Copies the weights of `p` into `b` (same architecture), then re-estimates any batch norms that an
 * exporter had folded away on up to CALIBRATION_IMAGES images of the training set `data`, spread evenly
 * over it (recalibrateUnfoldedNorms: exact at inference, and training mode starts from the same
 * function). Returns lines for the training log.
 */
export async function initBackboneFrom(p: string, b: Backbone, data?: string): Promise<string[]> {
  let line: string;
  if (isOnnxFile(p)) {
    const imp = readOnnxBackbone(p);
    assignBackboneWeights(b, imp.weights, p);
    line = `attfc: initialised f_q from ${p} (${imp.description}, sha256 ${imp.source.sha256})`;
  } else {
    const { backbone: loaded } = await loadBackboneFromModelDir(p);
    try {
      assignBackboneWeights(b, backboneWeights(loaded), `initFrom ${p}`);
    } finally {
      loaded.dispose();
    }
    line = `attfc: initialised f_q from the model folder ${p}`;
  }
  if (!data) return [line];
  const { images, n } = await calibrationImages(data, b.options.inputSize);
  const count = recalibrateUnfoldedNorms(b, images, n);
  return count > 0 ? [line, `attfc: re-estimated the statistics of ${count} batch norms the file had folded into biases, on ${n} training images`] : [line];
}

async function calibrationImages(data: string, size: number): Promise<{ images: Float32Array; n: number }> {
  const ds = openDataset(data);
  try {
    const n = Math.min(CALIBRATION_IMAGES, ds.numImages);
    const rgb: Uint8Array[] = [];
    for (let k = 0; k < n; k++) {
      const i = Math.floor((k * ds.numImages) / n);
      try {
        rgb.push(await decodeToRgb(await ds.readImage(i), size, ds.describe(i)));
      } catch {
        // an undecodable image is left out here; the data pipeline reports them
      }
    }
    return { images: normalizeBatch(rgb, size), n: rgb.length };
  } finally {
    ds.close();
  }
}
