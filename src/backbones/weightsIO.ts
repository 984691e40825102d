// A backbone's weights as plain arrays by variable name, in and out: copying weights into a backbone
// (from an import or another model), and rebuilding a backbone from a saved attfc model folder.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { AttfcError } from '../errors.js';
import { loadEmbeddingModel } from './embeddingModel.js';
import { backboneSpec, createBackbone, isBackboneName, type BackboneName } from './registry.js';
import { groupWidths, type LayerNode } from './spec.js';
import type { Backbone, BackboneOptions } from './types.js';

/** Every variable's values by name (copies). */
export function backboneWeights(b: Backbone): Map<string, Float32Array> {
  return new Map(b.variables().map((v) => [v.name, (v.variable.dataSync() as Float32Array).slice()]));
}

/** Assigns every variable of `b` from `values`; a missing or wrongly sized entry is an AttfcError naming `what`. */
export function assignBackboneWeights(b: Backbone, values: Map<string, Float32Array>, what: string): void {
  for (const v of b.variables()) {
    const arr = values.get(v.name);
    if (!arr || arr.length !== v.variable.size)
      throw new AttfcError(`${what}: ${v.name} is missing or has ${arr?.length ?? 0} values, expected ${v.variable.size} (another backbone or size?)`);
  }
  tf.tidy(() => {
    for (const v of b.variables()) v.variable.assign(tf.tensor(values.get(v.name) as Float32Array, v.variable.shape, 'float32'));
  });
}

/** The backbone name and options a saved model folder records (written by saveEmbeddingModel). */
export function architectureFromMetadata(metadata: Record<string, unknown>, what: string): { backbone: BackboneName; options: BackboneOptions } {
  const name = metadata.backbone;
  if (typeof name !== 'string' || !isBackboneName(name))
    throw new AttfcError(`${what}: userDefinedMetadata.backbone is ${JSON.stringify(name)}; expected an attfc backbone name (a model written by attfc train or attfc import)`);
  const num = (key: string): number | undefined => {
    const v = metadata[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number') throw new AttfcError(`${what}: userDefinedMetadata.${key} is ${JSON.stringify(v)}; expected a number`);
    return v;
  };
  const options: BackboneOptions = { inputSize: num('inputSize'), widthMultiplier: num('widthMultiplier'), embeddingSize: num('embeddingSize') };
  const mbfScale = num('mbfScale');
  if (mbfScale !== undefined) options.mbfScale = mbfScale;
  return { backbone: name, options };
}

/** Layer weights of a saveEmbeddingModel folder -> attfc variables (the inverse of toLayersModel). */
function weightsFromLayersModel(model: tfl.LayersModel, b: Backbone, what: string): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const layerWeights = (name: string, count: number): Float32Array[] => {
    let w: tf.Tensor[];
    try {
      w = model.getLayer(name).getWeights();
    } catch {
      throw new AttfcError(`${what}: the model has no layer "${name}", which ${b.name} needs`);
    }
    if (w.length !== count) throw new AttfcError(`${what}: layer "${name}" has ${w.length} weights, expected ${count}`);
    return w.map((t) => t.dataSync() as Float32Array);
  };
  const walk = (nodes: LayerNode[]) => {
    for (const n of nodes) {
      switch (n.op) {
        case 'conv': {
          const [w] = layerWeights(n.name, 1);
          // toLayersModel pre-scales a grouped (non-depthwise) conv's filter by its inputs per group.
          const { perGroupIn } = groupWidths(n);
          out.set(`${n.name}.weight`, n.groups > 1 && perGroupIn > 1 ? w.map((v) => v / perGroupIn) : w.slice());
          break;
        }
        case 'bn': {
          const [g, beta, mean, variance] = layerWeights(n.name, 4);
          out.set(`${n.name}.weight`, g.slice());
          out.set(`${n.name}.bias`, beta.slice());
          out.set(`${n.name}.running_mean`, mean.slice());
          out.set(`${n.name}.running_var`, variance.slice());
          break;
        }
        case 'prelu':
          out.set(`${n.name}.weight`, layerWeights(n.name, 1)[0].slice());
          break;
        case 'dense': {
          const w = layerWeights(n.name, n.biasInit ? 2 : 1);
          out.set(`${n.name}.weight`, w[0].slice());
          if (n.biasInit) out.set(`${n.name}.bias`, w[1].slice());
          break;
        }
        case 'residual':
          walk(n.body);
          walk(n.shortcut);
          break;
        case 'flatten':
        case 'dropout':
          break;
      }
    }
  };
  walk(backboneSpec(b.name, b.options).nodes);
  return out;
}

/**
 * Rebuilds a trainable backbone from a loaded attfc layers model and its metadata (`what` names the file
 * in errors). `overrides` may add options the file does not fix (seed, dropout).
 */
export function backboneFromLayersModel(model: tfl.LayersModel, metadata: Record<string, unknown>, what: string, overrides: Pick<BackboneOptions, 'seed' | 'dropout'> = {}): Backbone {
  const { backbone: name, options } = architectureFromMetadata(metadata, what);
  const b = createBackbone(name, { ...options, ...overrides });
  try {
    assignBackboneWeights(b, weightsFromLayersModel(model, b, what), what);
  } catch (e) {
    b.dispose();
    throw e;
  }
  return b;
}

/**
 * Rebuilds a trainable backbone from an attfc model folder (model.json + weights.bin with attfc
 * metadata). `overrides` may add options the file does not fix (seed, dropout).
 */
export async function loadBackboneFromModelDir(dir: string, overrides: Pick<BackboneOptions, 'seed' | 'dropout'> = {}): Promise<{ backbone: Backbone; metadata: Record<string, unknown> }> {
  const { model, metadata } = await loadEmbeddingModel(dir);
  try {
    return { backbone: backboneFromLayersModel(model, metadata, `${dir}/model.json`, overrides), metadata };
  } finally {
    model.dispose();
  }
}
