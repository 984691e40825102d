// ONNX file -> attfc backbone: decode, read the graph, recognise the architecture, map the weights;
// then either a live Backbone or an attfc model folder with the source recorded in its metadata.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { AttfcError } from '../errors.js';
import { INPUT_NORMALIZATION, saveEmbeddingModel } from '../backbones/embeddingModel.js';
import { backboneSpec, createBackbone, resolveBackboneOptions, type BackboneName } from '../backbones/registry.js';
import type { Backbone, BackboneOptions } from '../backbones/types.js';
import { assignBackboneWeights } from '../backbones/weightsIO.js';
import { readGraph } from './graph.js';
import { decodeModel } from './proto.js';
import { recogniseArchitecture } from './recognise.js';
import { mapWeights } from './weights.js';

export interface OnnxImport {
  backbone: BackboneName;
  /** inputSize, embeddingSize, widthMultiplier, and mbfScale when not the backbone's own. */
  options: BackboneOptions;
  /** e.g. "IResNet-50" or "MobileFaceNet blocks (1,4,6,2), scale 1". */
  description: string;
  /** Every backbone variable by name, attfc layout. */
  weights: Map<string, Float32Array>;
  source: { file: string; sha256: string; producer: string; opset: number };
  /** Batch norms that were folded into a bias in the file and are separate (trainable) again. */
  unfoldedBatchNorms: number;
  /** Factor of an in-graph input scaling folded into the stem convolution (1: none). */
  inputScale: number;
}

/** Reads and recognises an ONNX recognition model (synchronous; the whole file is read once). */
export function readOnnxBackbone(file: string): OnnxImport {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new AttfcError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const model = decodeModel(bytes, file);
  const graph = readGraph(model, file);
  const hints = new Map((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  const candidates = recogniseArchitecture(graph, hints, file);
  let firstError: unknown = null;
  let found: { arch: (typeof candidates)[number]; mapped: ReturnType<typeof mapWeights> } | null = null;
  for (const arch of candidates) {
    try {
      const resolved = resolveBackboneOptions(arch.options);
      found = { arch, mapped: mapWeights(graph, backboneSpec(arch.backbone, resolved), arch.description, file) };
      break;
    } catch (e) {
      firstError ??= e instanceof AttfcError && !e.message.startsWith(file) ? new AttfcError(`${file}: ${arch.description} is outside what attfc builds (${e.message})`) : e;
    }
  }
  if (!found) throw firstError;
  const { arch, mapped } = found;
  return {
    backbone: arch.backbone,
    options: arch.options,
    description: arch.description,
    weights: mapped.values,
    source: {
      file: path.resolve(file),
      sha256: createHash('sha256').update(bytes).digest('hex'),
      producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
      opset: graph.opset,
    },
    unfoldedBatchNorms: mapped.unfoldedBatchNorms,
    inputScale: mapped.inputScale,
  };
}

/** A trainable backbone holding the imported weights; `extra` adds options the file does not fix. */
export function importedBackbone(imp: OnnxImport, extra: Pick<BackboneOptions, 'seed' | 'dropout'> = {}): Backbone {
  const b = createBackbone(imp.backbone, { ...imp.options, ...extra });
  try {
    assignBackboneWeights(b, imp.weights, imp.source.file);
  } catch (e) {
    b.dispose();
    throw e;
  }
  return b;
}

/** The model-folder metadata of an import. */
export function importMetadata(imp: OnnxImport): Record<string, unknown> {
  return {
    backbone: imp.backbone,
    inputSize: imp.options.inputSize,
    embeddingSize: imp.options.embeddingSize,
    widthMultiplier: imp.options.widthMultiplier,
    ...(imp.options.mbfScale !== undefined ? { mbfScale: imp.options.mbfScale } : {}),
    normalization: INPUT_NORMALIZATION,
    architecture: imp.description,
    sourceFile: imp.source.file,
    sourceSha256: imp.source.sha256,
    sourceProducer: imp.source.producer,
    sourceOpset: imp.source.opset,
    unfoldedBatchNorms: imp.unfoldedBatchNorms,
    ...(imp.inputScale !== 1 ? { sourceInputScaleFolded: imp.inputScale } : {}),
  };
}

/**
 * Writes an import as an attfc model folder (model.json + weights.bin, the format training exports).
 * The folder appears complete or not at all; an existing folder is replaced only when it holds
 * nothing but a previous model.
 */
export async function writeImportedModel(imp: OnnxImport, dir: string, extraMetadata: Record<string, unknown> = {}): Promise<void> {
  await checkReplaceable(dir);
  const b = importedBackbone(imp);
  const tmp = `${dir}.tmp-${process.pid}`;
  try {
    await rm(tmp, { recursive: true, force: true });
    await saveEmbeddingModel(b, tmp, { ...importMetadata(imp), ...extraMetadata });
    await replaceDir(tmp, dir);
  } finally {
    b.dispose();
    await rm(tmp, { recursive: true, force: true });
  }
}

async function checkReplaceable(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      await mkdir(path.dirname(path.resolve(dir)), { recursive: true });
      return;
    }
    throw new AttfcError(`--out ${dir}: cannot use it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const other = entries.filter((f) => f !== 'model.json' && f !== 'weights.bin');
  if (other.length > 0) throw new AttfcError(`--out ${dir}: exists and holds other files (${other.slice(0, 3).join(', ')}); give a new or empty folder`);
}

async function replaceDir(tmp: string, final: string): Promise<void> {
  const old = `${final}.old-${process.pid}`;
  let moved = false;
  try {
    await rename(final, old);
    moved = true;
  } catch {
    /* nothing there yet */
  }
  await rename(tmp, final);
  if (moved) await rm(old, { recursive: true, force: true });
}

