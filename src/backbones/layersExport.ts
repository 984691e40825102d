// Inference graph of a backbone as a standard tfjs-layers functional model, so the exported
// model.json runs with plain `tf.loadLayersModel` (Node or browser) without attfc.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BN_EPSILON } from './graphBackbone.js';
import { backboneSpec } from './registry.js';
import type { ConvNode, LayerNode } from './spec.js';
import { groupWidths } from './spec.js';
import type { Backbone } from './types.js';

type Sym = tfl.SymbolicTensor;

/** A layer plus the function producing its weights once the graph is built (keeps construction and weights together). */
interface PendingWeights {
  layer: tfl.layers.Layer;
  weights: () => tf.Tensor[];
}

/**
 * Builds the inference model (BN uses running statistics, dropout omitted) with the backbone's current
 * weights. Input: [B, S, S, 3] NHWC, normalised (x/255-0.5)/0.5; output: raw embeddings [B, D].
 * Weights are copied, so later training of `b` does not change the model.
 */
export function toLayersModel(b: Backbone): tfl.LayersModel {
  const spec = backboneSpec(b.name, b.options);
  const vars = new Map(b.variables().map((v) => [v.name, v.variable as tf.Tensor]));
  const get = (name: string): tf.Tensor => {
    const t = vars.get(name);
    if (!t) throw new Error(`toLayersModel: ${b.name} has no variable ${name}`);
    return t;
  };
  const pending: PendingWeights[] = [];

  const apply = (layer: tfl.layers.Layer, x: Sym | Sym[], weights?: () => tf.Tensor[]): Sym => {
    if (weights) pending.push({ layer, weights });
    return layer.apply(x) as Sym;
  };

  const conv = (n: ConvNode, input: Sym): Sym => {
    // PyTorch pads symmetrically; TF 'same' pads stride-2 convs asymmetrically, so pad explicitly.
    const x = n.pad > 0 ? apply(tfl.layers.zeroPadding2d({ name: `${n.name}.pad`, padding: [[n.pad, n.pad], [n.pad, n.pad]] }), input) : input;
    const common = { name: n.name, kernelSize: n.kernel, strides: n.stride, padding: 'valid' as const, useBias: false };
    const w = () => [get(`${n.name}.weight`)];
    if (n.groups === 1) return apply(tfl.layers.conv2d({ ...common, filters: n.outChannels }), x, w);
    const { perGroupIn: ci, perGroupOut: co } = groupWidths(n);
    if (ci === 1) return apply(tfl.layers.depthwiseConv2d({ ...common, depthMultiplier: co }), x, w);
    // Grouped conv: depthwise with multiplier co gives channel (g*ci+i)*co+o; average the ci inputs of
    // each group with a 1-D pool over a reshaped view, with the filter pre-scaled by ci to make it a sum.
    const dw = apply(tfl.layers.depthwiseConv2d({ ...common, depthMultiplier: co }), x, () => [tf.mul(get(`${n.name}.weight`), ci)]);
    const [, oh, ow] = dw.shape as number[];
    const steps = apply(tfl.layers.reshape({ name: `${n.name}.split`, targetShape: [oh * ow * n.groups * ci, co] }), dw);
    const summed = apply(tfl.layers.averagePooling1d({ name: `${n.name}.sum`, poolSize: ci, strides: ci, padding: 'valid' }), steps);
    return apply(tfl.layers.reshape({ name: `${n.name}.merge`, targetShape: [oh, ow, n.groups * co] }), summed);
  };

  const build = (nodes: LayerNode[], input: Sym): Sym => {
    let x = input;
    for (const n of nodes) {
      switch (n.op) {
        case 'conv':
          x = conv(n, x);
          break;
        case 'bn':
          x = apply(tfl.layers.batchNormalization({ name: n.name, axis: -1, epsilon: BN_EPSILON, momentum: 0.9 }), x, () =>
            ['weight', 'bias', 'running_mean', 'running_var'].map((s) => get(`${n.name}.${s}`)),
          );
          break;
        case 'prelu':
          x = apply(tfl.layers.prelu({ name: n.name, sharedAxes: [1, 2] }), x, () => [tf.reshape(get(`${n.name}.weight`), [1, 1, n.channels])]);
          break;
        case 'residual': {
          const body = build(n.body, x);
          const shortcut = n.shortcut.length > 0 ? build(n.shortcut, x) : x;
          x = apply(tfl.layers.add(), [body, shortcut]);
          break;
        }
        case 'flatten':
          x = apply(tfl.layers.flatten(), x);
          break;
        case 'dropout':
          break; // inference graph
        case 'dense':
          x = apply(tfl.layers.dense({ name: n.name, units: n.outFeatures, useBias: n.biasInit !== undefined }), x, () =>
            n.biasInit ? [get(`${n.name}.weight`), get(`${n.name}.bias`)] : [get(`${n.name}.weight`)],
          );
          break;
      }
    }
    return x;
  };

  const input = tfl.input({ name: 'input', shape: [spec.inputSize, spec.inputSize, spec.inputChannels] });
  const output = build(spec.nodes, input);
  const model = tfl.model({ name: b.name, inputs: input, outputs: output });
  // setWeights copies the values into the layer's own variables.
  for (const p of pending) tf.tidy(() => p.layer.setWeights(p.weights()));
  return model;
}
