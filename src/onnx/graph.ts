// Reads an ONNX graph into a short list of layer operations with their weights and tensor shapes
// (conv, batch norm, PReLU, residual add, flatten, dense, input scaling), resolving everything that is
// only bookkeeping: initializers and Constant nodes, Identity and inference-mode Dropout, PyTorch's
// Shape/Gather/Unsqueeze/Concat arithmetic in front of a Reshape, bias Adds after MatMul, and a 1x1
// convolution on a 1x1 map that stands for a fully connected layer. Any other operator stops the
// import with one line naming the node.
import { AttfcError } from '../errors.js';
import {
  attr,
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  floatValues,
  intValues,
  tensorDims,
  toNumber,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './proto.js';

/** Where an operation came from in the ONNX graph, for error messages. */
export interface NodeRef {
  /** Position in graph.node. */
  index: number;
  name: string;
  opType: string;
}

interface OpBase {
  node: NodeRef;
  output: string;
}

/** Convolution; weight in ONNX layout [out, in/group, k, k]. */
export interface ConvOp extends OpBase {
  kind: 'conv';
  input: string;
  weight: Float32Array;
  outChannels: number;
  inChannels: number;
  kernel: number;
  stride: number;
  pad: number;
  group: number;
  bias: Float32Array | null;
}

export interface BatchNormOp extends OpBase {
  kind: 'bn';
  input: string;
  scale: Float32Array;
  bias: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
  epsilon: number;
}

export interface PReluOp extends OpBase {
  kind: 'prelu';
  input: string;
  /** One slope per channel, or a single shared slope. */
  slope: Float32Array;
}

export interface AddOp extends OpBase {
  kind: 'add';
  inputs: [string, string];
}

/** [N, C, H, W] -> [N, C*H*W] in NCHW order. */
export interface FlattenOp extends OpBase {
  kind: 'flatten';
  input: string;
}

/** Fully connected layer; weight [in, out] row-major. */
export interface DenseOp extends OpBase {
  kind: 'dense';
  input: string;
  weight: Float32Array;
  inFeatures: number;
  outFeatures: number;
  bias: Float32Array | null;
}

/** y = x * mul + add with scalar constants (in-graph input normalisation). */
export interface AffineOp extends OpBase {
  kind: 'affine';
  input: string;
  mul: number;
  add: number;
}

export type GraphOp = ConvOp | BatchNormOp | PReluOp | AddOp | FlattenOp | DenseOp | AffineOp;

export interface ReadGraph {
  /** Name of the image input. */
  input: string;
  /** Input side when the graph fixes it (NCHW [N, 3, S, S]), else null. */
  inputSize: number | null;
  output: string;
  ops: GraphOp[];
  /** Activation shapes; the batch dimension is -1. */
  shapes: Map<string, number[]>;
  opset: number;
}

/** A Shape-arithmetic value: a list of dimensions, 'N' standing for the batch size. */
interface ShapeValue {
  dims: (number | 'N')[];
  scalar: boolean;
}

/** Operators attfc reads; shown when a graph holds anything else. */
export const SUPPORTED_OPERATORS = [
  'Conv', 'BatchNormalization', 'PRelu', 'Add', 'Sub', 'Mul', 'Div', 'Flatten', 'Reshape', 'Gemm', 'MatMul',
  'Identity', 'Dropout', 'Constant', 'Shape', 'Gather', 'Unsqueeze', 'Concat',
];

/** e.g. `node 12 "Conv_12" (Conv)`; nodes without a name show their position only. */
export function describeNode(ref: NodeRef): string {
  return `node ${ref.index}${ref.name ? ` "${ref.name}"` : ''} (${ref.opType})`;
}

/** Reads `model`'s graph; `what` names the file in errors. */
export function readGraph(model: ModelProto, what: string): ReadGraph {
  const graph = model.graph as GraphProto;
  const opset = Math.max(0, ...(model.opsetImport ?? []).filter((o) => !o.domain || o.domain === 'ai.onnx').map((o) => toNumber(o.version)));
  const consts = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) consts.set(t.name ?? '', t);
  const shapes = new Map<string, number[]>();
  const shapeValues = new Map<string, ShapeValue>();
  const alias = new Map<string, string>();
  const resolve = (name: string): string => alias.get(name) ?? name;

  const imageInputs = (graph.input ?? []).filter((i) => !consts.has(i.name ?? ''));
  if (imageInputs.length !== 1)
    throw new AttfcError(`${what}: expected one image input, found ${imageInputs.length} (${imageInputs.map((i) => i.name).join(', ')})`);
  const inputInfo = imageInputs[0];
  const input = inputInfo.name ?? '';
  const dims = (inputInfo.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && toNumber(d.dimValue) > 0 ? toNumber(d.dimValue) : -1));
  const elem = inputInfo.type?.tensorType?.elemType;
  if (elem !== undefined && elem !== null && elem !== 1) throw new AttfcError(`${what}: input "${input}" has element type ${elem}; expected float32`);
  if (dims.length !== 4 || (dims[1] !== 3 && dims[1] !== -1))
    throw new AttfcError(`${what}: input "${input}" has shape [${dims.map((d) => (d < 0 ? '?' : d))}]; expected NCHW [N, 3, S, S]`);
  if (dims[2] !== dims[3]) throw new AttfcError(`${what}: input "${input}" is ${dims[2]}x${dims[3]}; expected a square image`);
  const inputSize = dims[2] > 0 ? dims[2] : null;
  // An unfixed side is taken as insightface's 112 here; the architecture match checks it against the weights.
  shapes.set(input, [-1, 3, inputSize ?? 112, inputSize ?? 112]);

  const ops: GraphOp[] = [];
  const nodes = graph.node ?? [];
  nodes.forEach((node: NodeProto, index) => {
    const ref: NodeRef = { index, name: node.name ?? '', opType: node.opType ?? '' };
    const here = `${what}: ${describeNode(ref)}`;
    const ins = (node.input ?? []).map((n) => (n ? resolve(n) : ''));
    const out = (node.output ?? [])[0] ?? '';
    const isConst = (n: string) => consts.has(n);
    const constF = (n: string, role: string): Float32Array => {
      const t = consts.get(n);
      if (!t) throw new AttfcError(`${here}: its ${role} "${n}" is computed in the graph; attfc needs it as a stored constant`);
      return floatValues(t, here);
    };
    const constDims = (n: string) => tensorDims(consts.get(n) as TensorProto);
    const activation = (n: string, role = 'input'): number[] => {
      const s = shapes.get(n);
      if (!s) throw new AttfcError(`${here}: its ${role} "${n}" is not an image feature map or vector attfc follows`);
      return s;
    };
    const unsupported = (why: string): never => {
      throw new AttfcError(`${here}: ${why}`);
    };
    const scalarOf = (n: string): number | null => {
      if (!isConst(n)) return null;
      const v = constF(n, 'constant');
      return v.length === 1 ? v[0] : null;
    };

    switch (ref.opType) {
      case 'Constant': {
        const a = attr(node, 'value');
        if (!a?.t) unsupported('only Constant nodes with a tensor "value" are supported');
        consts.set(out, { ...(a!.t as TensorProto), name: out });
        return;
      }
      case 'Identity':
      case 'Dropout': {
        if (isConst(ins[0])) {
          consts.set(out, { ...(consts.get(ins[0]) as TensorProto), name: out });
          return;
        }
        if (ref.opType === 'Dropout' && attrInt(node, 'training_mode', 0) !== 0) unsupported('Dropout in training mode');
        activation(ins[0]);
        alias.set(out, ins[0]);
        return;
      }
      case 'Shape': {
        const s = activation(ins[0]);
        shapeValues.set(out, { dims: s.map((d, i) => (i === 0 ? 'N' : d)), scalar: false });
        return;
      }
      case 'Gather': {
        const v = shapeValues.get(ins[0]);
        if (!v || !isConst(ins[1]) || attrInt(node, 'axis', 0) !== 0) unsupported('Gather is read only as part of shape arithmetic (indexing the result of Shape)');
        const idx = intValues(consts.get(ins[1]) as TensorProto, here);
        const picked = idx.map((i) => v!.dims[i < 0 ? i + v!.dims.length : i]);
        shapeValues.set(out, { dims: picked, scalar: constDims(ins[1]).length === 0 });
        return;
      }
      case 'Unsqueeze': {
        const v = shapeValues.get(ins[0]);
        if (!v || !v.scalar) unsupported('Unsqueeze is read only as part of shape arithmetic');
        shapeValues.set(out, { dims: v!.dims, scalar: false });
        return;
      }
      case 'Concat': {
        const parts = ins.map((n) => shapeValues.get(n) ?? (isConst(n) ? { dims: intValues(consts.get(n) as TensorProto, here), scalar: false } : null));
        if (parts.some((p) => !p) || attrInt(node, 'axis', 0) !== 0) unsupported('Concat is read only as part of shape arithmetic');
        shapeValues.set(out, { dims: parts.flatMap((p) => (p as ShapeValue).dims), scalar: false });
        return;
      }
      case 'Conv': {
        const x = activation(ins[0]);
        const wDims = consts.has(ins[1]) ? constDims(ins[1]) : [];
        const weight = constF(ins[1], 'weight');
        const group = attrInt(node, 'group', 1);
        const kernel = attrInts(node, 'kernel_shape') ?? wDims.slice(2);
        const strides = attrInts(node, 'strides') ?? [1, 1];
        const pads = attrInts(node, 'pads') ?? [0, 0, 0, 0];
        const dil = attrInts(node, 'dilations') ?? [1, 1];
        const autoPad = attrString(node, 'auto_pad') ?? 'NOTSET';
        if (wDims.length !== 4) unsupported(`a ${wDims.length - 2}-D convolution; expected 2-D`);
        if (autoPad !== 'NOTSET') unsupported(`auto_pad ${autoPad}; expected explicit pads`);
        if (kernel[0] !== kernel[1] || strides[0] !== strides[1] || new Set(pads).size !== 1 || dil.some((d) => d !== 1))
          unsupported(`kernel [${kernel}], strides [${strides}], pads [${pads}], dilations [${dil}]; expected square kernels, equal strides, one symmetric pad and no dilation`);
        const [outC, perGroupIn] = wDims;
        if (x[1] !== perGroupIn * group) unsupported(`weight [${wDims}] with group ${group} does not fit an input of ${x[1]} channels`);
        const bias = ins[2] ? constF(ins[2], 'bias') : null;
        const side = Math.floor((x[2] + 2 * pads[0] - kernel[0]) / strides[0]) + 1;
        if (side < 1) unsupported(`the ${x[2]}x${x[2]} input is smaller than the ${kernel[0]}x${kernel[0]} kernel`);
        ops.push({ kind: 'conv', node: ref, input: ins[0], output: out, weight, outChannels: outC, inChannels: x[1], kernel: kernel[0], stride: strides[0], pad: pads[0], group, bias });
        shapes.set(out, [-1, outC, side, side]);
        return;
      }
      case 'BatchNormalization': {
        const x = activation(ins[0]);
        if (attrInt(node, 'training_mode', 0) !== 0) unsupported('batch norm in training mode');
        const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => constF(ins[i], ['', 'scale', 'bias', 'mean', 'variance'][i]));
        if ([scale, bias, mean, variance].some((v) => v.length !== x[1])) unsupported(`its parameters do not have ${x[1]} channels`);
        ops.push({ kind: 'bn', node: ref, input: ins[0], output: out, scale, bias, mean, variance, epsilon: attrFloat(node, 'epsilon', 1e-5) });
        shapes.set(out, x);
        return;
      }
      case 'PRelu': {
        const x = activation(ins[0]);
        const slope = constF(ins[1], 'slope');
        if (slope.length !== 1 && slope.length !== x[1]) unsupported(`slope of ${slope.length} values for ${x[1]} channels`);
        ops.push({ kind: 'prelu', node: ref, input: ins[0], output: out, slope });
        shapes.set(out, x);
        return;
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div': {
        const [a, b] = ins;
        if (!isConst(a) && !isConst(b)) {
          if (ref.opType !== 'Add') unsupported('an element-wise product or difference of two feature maps');
          const sa = activation(a);
          const sb = activation(b);
          if (sa.join() !== sb.join()) unsupported(`adds shapes [${sa}] and [${sb}]`);
          ops.push({ kind: 'add', node: ref, inputs: [a, b], output: out });
          shapes.set(out, sa);
          return;
        }
        if (isConst(a) && ref.opType !== 'Add' && ref.opType !== 'Mul') unsupported('a constant minus or divided by a feature map');
        const xName = isConst(a) ? b : a;
        const cName = isConst(a) ? a : b;
        const x = activation(xName);
        const s = scalarOf(cName);
        if (s !== null) {
          const affine = { Add: [1, s], Sub: [1, -s], Mul: [s, 0], Div: [1 / s, 0] }[ref.opType] as [number, number];
          ops.push({ kind: 'affine', node: ref, input: xName, output: out, mul: affine[0], add: affine[1] });
          shapes.set(out, x);
          return;
        }
        // A per-feature bias after MatMul (PyTorch's Linear at some opsets).
        const prev = ops.find((o) => o.output === xName);
        const values = constF(cName, 'bias');
        if (ref.opType === 'Add' && prev?.kind === 'dense' && !prev.bias && x.length === 2 && values.length === x[1]) {
          prev.bias = values;
          alias.set(out, xName);
          return;
        }
        return unsupported('an element-wise operation with a constant that is neither a scalar nor a dense-layer bias');
      }
      case 'Flatten':
      case 'Reshape': {
        const x = activation(ins[0]);
        if (ref.opType === 'Flatten' && attrInt(node, 'axis', 1) !== 1) unsupported(`axis ${attrInt(node, 'axis', 1)}; expected 1`);
        if (ref.opType === 'Reshape') {
          const target = shapeValues.get(ins[1])?.dims ?? (isConst(ins[1]) ? intValues(consts.get(ins[1]) as TensorProto, here) : null);
          const features = x.slice(1).reduce((p, d) => p * d, 1);
          const batchLike = (d: number | 'N') => d === 'N' || d === 0 || d === -1 || d === 1;
          if (!target || target.length !== 2 || !batchLike(target[0]) || (target[1] !== -1 && target[1] !== features))
            unsupported(`reshape to [${target ?? '?'}]; only flattening [N, C, H, W] to [N, ${features}] is supported`);
        }
        if (x.length === 2) {
          alias.set(out, ins[0]);
          return;
        }
        ops.push({ kind: 'flatten', node: ref, input: ins[0], output: out });
        shapes.set(out, [-1, x.slice(1).reduce((p, d) => p * d, 1)]);
        return;
      }
      case 'Gemm':
      case 'MatMul': {
        const x = activation(ins[0]);
        if (x.length !== 2) unsupported(`input of shape [${x}]; expected [N, features]`);
        const w = constF(ins[1], 'weight');
        const wd = constDims(ins[1]);
        const transB = ref.opType === 'Gemm' ? attrInt(node, 'transB', 0) : 0;
        if (ref.opType === 'Gemm' && (attrInt(node, 'transA', 0) !== 0 || attrFloat(node, 'alpha', 1) !== 1 || attrFloat(node, 'beta', 1) !== 1))
          unsupported('Gemm with transA, alpha or beta other than 0, 1, 1');
        if (wd.length !== 2) unsupported(`weight of shape [${wd}]; expected a matrix`);
        const [inF, outF] = transB ? [wd[1], wd[0]] : wd;
        if (inF !== x[1]) unsupported(`weight [${wd}] does not fit ${x[1]} input features`);
        const weight = transB ? transpose2d(w, wd[0], wd[1]) : w;
        let bias: Float32Array | null = null;
        if (ref.opType === 'Gemm' && ins[2]) {
          bias = constF(ins[2], 'bias');
          if (bias.length === 1 && outF > 1) bias = new Float32Array(outF).fill(bias[0]);
          if (bias.length !== outF) unsupported(`bias of ${bias.length} values for ${outF} outputs`);
        }
        ops.push({ kind: 'dense', node: ref, input: ins[0], output: out, weight, inFeatures: inF, outFeatures: outF, bias });
        shapes.set(out, [-1, outF]);
        return;
      }
      default:
        unsupported(`operator ${ref.opType} is not supported; attfc reads insightface IResNet and MobileFaceNet graphs`);
    }
  });

  const outputs = graph.output ?? [];
  if (outputs.length !== 1) throw new AttfcError(`${what}: expected one output (the embedding), found ${outputs.length}`);
  const output = resolve(outputs[0].name ?? '');
  const outShape = shapes.get(output);
  if (!outShape || outShape.length !== 2) throw new AttfcError(`${what}: output "${outputs[0].name}" is not an [N, D] embedding`);
  return { input, inputSize, output, ops: denseFromPointwiseConv(ops, shapes), shapes, opset };
}

function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

/**
 * A 1x1 convolution on a 1x1 map followed by a flatten is a fully connected layer after the flatten;
 * rewriting it so keeps one form for the architecture match.
 */
function denseFromPointwiseConv(ops: GraphOp[], shapes: Map<string, number[]>): GraphOp[] {
  const out = ops.slice();
  for (let i = 0; i < out.length; i++) {
    const c = out[i];
    if (c.kind !== 'conv' || c.kernel !== 1 || c.group !== 1 || c.pad !== 0) continue;
    const inShape = shapes.get(c.input) as number[];
    if (inShape[2] !== 1 || inShape[3] !== 1) continue;
    const users = out.filter((o) => (o.kind === 'add' ? o.inputs.includes(c.output) : o.input === c.output));
    if (users.length !== 1 || users[0].kind !== 'flatten') continue;
    const f = users[0];
    const flatIn = `${c.input}::flattened`;
    shapes.set(flatIn, [-1, c.inChannels]);
    const weight = transpose2d(c.weight, c.outChannels, c.inChannels); // [out, in] -> [in, out]
    out[i] = { kind: 'flatten', node: f.node, input: c.input, output: flatIn };
    out[out.indexOf(f)] = { kind: 'dense', node: c.node, input: flatIn, output: f.output, weight, inFeatures: c.inChannels, outFeatures: c.outChannels, bias: c.bias };
  }
  return out;
}
