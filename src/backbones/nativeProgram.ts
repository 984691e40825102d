// A backbone's architecture spec as the flat integer program the torch addon's native graph runs
// (native/graph_step.cc parses it): the same table that builds the variables, the tfjs forward pass and
// the export, so the native graph cannot disagree with them. Parameters are referred to by their index in
// the backbone's variable list; dropout layers by the index of the multiplier passed with each call.
// This module only describes; it never runs anything.
import type { ArchitectureSpec, LayerNode } from './spec.js';
import { convOutputSize } from './spec.js';

/** Must equal kProgramVersion in native/graph_step.cc. */
export const NATIVE_PROGRAM_VERSION = 1;

const OP = { conv: 1, bn: 2, prelu: 3, resBegin: 4, resShortcut: 5, resEnd: 6, flatten: 7, dropout: 8, dense: 9 } as const;

export interface NativeProgram {
  program: Int32Array;
  /** Batch-norm names in program order: the native graph returns their new running statistics in it. */
  norms: string[];
  /** Dropout layers in program order: rate and features per sample (the mask is [batch, features]). */
  dropouts: { rate: number; features: number }[];
}

/** Compiles `spec`; `index(name)` is the position of variable `name` in the list passed to the graph. */
export function nativeProgram(spec: ArchitectureSpec, index: (name: string) => number): NativeProgram {
  const out: number[] = [NATIVE_PROGRAM_VERSION, spec.inputSize, spec.inputChannels];
  const norms: string[] = [];
  const dropouts: { rate: number; features: number }[] = [];
  // the activation's shape as the walk goes: [side, channels], or [0, features] once flat
  const walk = (nodes: LayerNode[], side: number, channels: number): [number, number] => {
    for (const n of nodes) {
      switch (n.op) {
        case 'conv':
          out.push(OP.conv, index(`${n.name}.weight`), n.inChannels, n.outChannels, n.kernel, n.stride, n.pad, n.groups);
          side = convOutputSize(side, n.kernel, n.stride, n.pad);
          channels = n.outChannels;
          break;
        case 'bn':
          out.push(OP.bn, ...['weight', 'bias', 'running_mean', 'running_var'].map((s) => index(`${n.name}.${s}`)), n.frozenScale ? 1 : 0);
          norms.push(n.name);
          break;
        case 'prelu':
          out.push(OP.prelu, index(`${n.name}.weight`));
          break;
        case 'residual': {
          out.push(OP.resBegin);
          const body = walk(n.body, side, channels);
          out.push(OP.resShortcut);
          walk(n.shortcut, side, channels);
          out.push(OP.resEnd);
          [side, channels] = body;
          break;
        }
        case 'flatten':
          out.push(OP.flatten);
          if (side > 0) channels = side * side * channels;
          side = 0;
          break;
        case 'dropout':
          // a rate of 0 is the identity: no mask, no op
          if (n.rate > 0) {
            out.push(OP.dropout, dropouts.length);
            dropouts.push({ rate: n.rate, features: side > 0 ? side * side * channels : channels });
          }
          break;
        case 'dense':
          out.push(OP.dense, index(`${n.name}.weight`), n.biasInit ? index(`${n.name}.bias`) : -1, n.inFeatures, n.outFeatures);
          side = 0;
          channels = n.outFeatures;
          break;
      }
    }
    return [side, channels];
  };
  walk(spec.nodes, spec.inputSize, spec.inputChannels);
  return { program: Int32Array.from(out), norms, dropouts };
}
