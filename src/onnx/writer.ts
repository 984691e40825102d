// Writes a backbone's inference graph as ONNX (opset 13) laid out like insightface's released files:
// input "input" NCHW float32 [batch, 3, S, S] already normalised (x - 127.5) / 127.5, output "output"
// [batch, D] raw embeddings, batch dimension dynamic. Initializers carry attfc's (PyTorch state_dict)
// variable names; metadata_props record the backbone so an import restores it exactly.
import { BN_EPSILON } from '../backbones/graphBackbone.js';
import { backboneSpec } from '../backbones/registry.js';
import { convOutputSize, type LayerNode } from '../backbones/spec.js';
import type { Backbone } from '../backbones/types.js';
import { AttributeType, DataType, onnx, type NodeProto, type TensorProto } from './proto.js';
import { METADATA_KEYS } from './recognise.js';
import { convWeightToOnnx, permuteFlattenRows } from './weights.js';

export const ONNX_OPSET = 13;
export const ONNX_INPUT_NAME = 'input';
export const ONNX_OUTPUT_NAME = 'output';

export interface OnnxExportOptions {
  /**
   * Fold every batch norm that directly follows a convolution into the convolution's weights and bias,
   * as PyTorch's exporter does (the pre-activation norms of IResNet blocks and the BN1d stay). Off by
   * default: unfolded, an export -> import round trip gives back identical weights.
   */
  foldBatchNorm?: boolean;
  /** Written as producer_version. */
  producerVersion?: string;
  /** Extra metadata_props. */
  metadata?: Record<string, string>;
}

function floatTensor(name: string, dims: number[], values: Float32Array): TensorProto {
  const bytes = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  return { name, dims, dataType: DataType.FLOAT, rawData: bytes };
}

function ints(name: string, v: number[]) {
  return { name, type: AttributeType.INTS, ints: v };
}

/** Encodes `b` (its current weights) as an ONNX model. */
export function backboneToOnnx(b: Backbone, options: OnnxExportOptions = {}): Uint8Array {
  const spec = backboneSpec(b.name, b.options);
  const vars = new Map(b.variables().map((v) => [v.name, v.variable.dataSync() as Float32Array]));
  const get = (name: string): Float32Array => {
    const v = vars.get(name);
    if (!v) throw new Error(`backboneToOnnx: ${b.name} has no variable ${name}`);
    return v;
  };
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  let channels = spec.inputChannels;
  let side = spec.inputSize;
  let flatFrom: { c: number; side: number } | null = null;
  let adds = 0;

  const emit = (opType: string, name: string, inputs: string[], attribute: NodeProto['attribute'] = []): string => {
    nodes.push({ opType, name, input: inputs, output: [name], attribute });
    return name;
  };

  const walk = (list: LayerNode[], input: string): string => {
    let x = input;
    for (let i = 0; i < list.length; i++) {
      const n = list[i];
      switch (n.op) {
        case 'conv': {
          let w = convWeightToOnnx(get(`${n.name}.weight`), n);
          const next = list[i + 1];
          const inputs = [x, `${n.name}.weight`];
          if (options.foldBatchNorm && next?.op === 'bn') {
            const gamma = get(`${next.name}.weight`);
            const beta = get(`${next.name}.bias`);
            const mean = get(`${next.name}.running_mean`);
            const variance = get(`${next.name}.running_var`);
            const per = w.length / n.outChannels;
            const bias = new Float32Array(n.outChannels);
            w = w.slice();
            for (let o = 0; o < n.outChannels; o++) {
              const s = gamma[o] / Math.sqrt(variance[o] + BN_EPSILON);
              for (let j = 0; j < per; j++) w[o * per + j] *= s;
              bias[o] = beta[o] - mean[o] * s;
            }
            initializers.push(floatTensor(`${n.name}.bias`, [n.outChannels], bias));
            inputs.push(`${n.name}.bias`);
            i++;
          }
          initializers.push(floatTensor(`${n.name}.weight`, [n.outChannels, n.inChannels / n.groups, n.kernel, n.kernel], w));
          x = emit('Conv', n.name, inputs, [
            ints('kernel_shape', [n.kernel, n.kernel]),
            ints('strides', [n.stride, n.stride]),
            ints('pads', [n.pad, n.pad, n.pad, n.pad]),
            ints('dilations', [1, 1]),
            { name: 'group', type: AttributeType.INT, i: n.groups },
          ]);
          channels = n.outChannels;
          side = convOutputSize(side, n.kernel, n.stride, n.pad);
          break;
        }
        case 'bn': {
          const names = ['weight', 'bias', 'running_mean', 'running_var'].map((s) => `${n.name}.${s}`);
          for (const name of names) initializers.push(floatTensor(name, [n.channels], get(name)));
          x = emit('BatchNormalization', n.name, [x, ...names], [{ name: 'epsilon', type: AttributeType.FLOAT, f: BN_EPSILON }]);
          break;
        }
        case 'prelu':
          initializers.push(floatTensor(`${n.name}.weight`, [n.channels, 1, 1], get(`${n.name}.weight`)));
          x = emit('PRelu', n.name, [x, `${n.name}.weight`]);
          break;
        case 'residual': {
          const [c0, s0] = [channels, side];
          const shortcut = n.shortcut.length > 0 ? walk(n.shortcut, x) : x;
          [channels, side] = [c0, s0]; // the shortcut ends at the body's shape; follow the body
          const body = walk(n.body, x);
          x = emit('Add', `residual_add_${++adds}`, [body, shortcut]);
          break;
        }
        case 'flatten':
          flatFrom = { c: channels, side };
          x = emit('Flatten', 'flatten', [x], [{ name: 'axis', type: AttributeType.INT, i: 1 }]);
          break;
        case 'dropout':
          break;
        case 'dense': {
          const from = flatFrom ?? { c: n.inFeatures, side: 1 };
          // attfc rows follow an NHWC flatten; ONNX's Flatten of NCHW needs them in (c, h, w) order.
          const rows = permuteFlattenRows(get(`${n.name}.weight`), from.c, from.side, n.outFeatures, false);
          const t = new Float32Array(rows.length); // [in, out] -> [out, in] (Gemm transB = 1, PyTorch's layout)
          for (let r = 0; r < n.inFeatures; r++) for (let c = 0; c < n.outFeatures; c++) t[c * n.inFeatures + r] = rows[r * n.outFeatures + c];
          initializers.push(floatTensor(`${n.name}.weight`, [n.outFeatures, n.inFeatures], t));
          const inputs = [x, `${n.name}.weight`];
          if (n.biasInit) {
            initializers.push(floatTensor(`${n.name}.bias`, [n.outFeatures], get(`${n.name}.bias`)));
            inputs.push(`${n.name}.bias`);
          }
          x = emit('Gemm', n.name, inputs, [{ name: 'transB', type: AttributeType.INT, i: 1 }]);
          channels = n.outFeatures;
          break;
        }
      }
    }
    return x;
  };

  const last = walk(spec.nodes, ONNX_INPUT_NAME);
  const lastNode = nodes.find((n) => n.output?.[0] === last) as NodeProto;
  lastNode.output = [ONNX_OUTPUT_NAME];

  const dims = (d: (number | string)[]) => ({ dim: d.map((v) => (typeof v === 'number' ? { dimValue: v } : { dimParam: v })) });
  const metadata: Record<string, string> = {
    [METADATA_KEYS.backbone]: b.name,
    [METADATA_KEYS.widthMultiplier]: String(b.options.widthMultiplier),
    ...(b.options.mbfScale !== undefined ? { [METADATA_KEYS.mbfScale]: String(b.options.mbfScale) } : {}),
    normalization: '(x - 127.5) / 127.5, NCHW RGB',
    ...options.metadata,
  };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'attfc',
    producerVersion: options.producerVersion ?? '',
    graph: {
      name: b.name,
      node: nodes,
      initializer: initializers,
      input: [{ name: ONNX_INPUT_NAME, type: { tensorType: { elemType: DataType.FLOAT, shape: dims(['batch', spec.inputChannels, spec.inputSize, spec.inputSize]) } } }],
      output: [{ name: ONNX_OUTPUT_NAME, type: { tensorType: { elemType: DataType.FLOAT, shape: dims(['batch', spec.embeddingSize]) } } }],
    },
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}
