// Maps the weights of a read ONNX graph onto an attfc architecture spec by following the data flow
// (not names, not node order): from the input, each spec layer takes the ONNX operation that consumes
// the current tensor. Batch norms that an exporter folded into the preceding conv/dense bias come back
// as gamma 1, beta = bias, mean 0, var 1 - eps (exactly the folded function, and trainable again).
// The match succeeds only when every ONNX operation is used once and the walk ends at the output, so
// the attfc model computes what the file computes.
import { AttfcError } from '../errors.js';
import { BN_EPSILON } from '../backbones/graphBackbone.js';
import { paramSpecs, type ArchitectureSpec, type ConvNode, type LayerNode } from '../backbones/spec.js';
import { describeNode, type GraphOp, type ReadGraph } from './graph.js';

export interface MappedWeights {
  /** Every variable of the spec by name, in attfc's storage layout. */
  values: Map<string, Float32Array>;
  /** Batch norms rebuilt from a folded bias. */
  unfoldedBatchNorms: number;
  /** Factor an in-graph input scaling contributed to the stem convolution (1 when there was none). */
  inputScale: number;
}

function describe(op: GraphOp): string {
  return describeNode(op.node);
}

/**
 * ONNX conv weight [out, in/g, k, k] -> attfc [k, k, in, out/g] (for g = 1 that is [k, k, in, out]; see
 * ConvNode): entry [y, x, g*ci+i, o] = W[g*co+o, i, y, x].
 */
export function convWeightFromOnnx(w: Float32Array, n: Pick<ConvNode, 'inChannels' | 'outChannels' | 'kernel' | 'groups'>): Float32Array {
  const out = new Float32Array(w.length);
  forConvEntries(n, (onnx, attfc) => (out[attfc] = w[onnx]));
  return out;
}

/** attfc conv weight -> ONNX [out, in/g, k, k] (inverse of convWeightFromOnnx). */
export function convWeightToOnnx(w: Float32Array, n: Pick<ConvNode, 'inChannels' | 'outChannels' | 'kernel' | 'groups'>): Float32Array {
  const out = new Float32Array(w.length);
  forConvEntries(n, (onnx, attfc) => (out[onnx] = w[attfc]));
  return out;
}

function forConvEntries(n: Pick<ConvNode, 'inChannels' | 'outChannels' | 'kernel' | 'groups'>, visit: (onnx: number, attfc: number) => void): void {
  const k = n.kernel;
  const ci = n.inChannels / n.groups;
  const co = n.outChannels / n.groups;
  for (let g = 0; g < n.groups; g++)
    for (let o = 0; o < co; o++)
      for (let i = 0; i < ci; i++)
        for (let y = 0; y < k; y++)
          for (let x = 0; x < k; x++) visit((((g * co + o) * ci + i) * k + y) * k + x, ((y * k + x) * n.inChannels + g * ci + i) * co + o);
}

/**
 * Dense weight rows after a flatten of a [C, H, W] map: ONNX flattens NCHW (row c*H*W + h*W + w), attfc
 * NHWC (row (h*W + w)*C + c). `toNhwc` picks the direction.
 */
export function permuteFlattenRows(w: Float32Array, c: number, side: number, outFeatures: number, toNhwc: boolean): Float32Array {
  if (side === 1) return w.slice();
  const out = new Float32Array(w.length);
  for (let ch = 0; ch < c; ch++)
    for (let p = 0; p < side * side; p++) {
      const nchw = ch * side * side + p;
      const nhwc = p * c + ch;
      const [from, to] = toNhwc ? [nchw, nhwc] : [nhwc, nchw];
      out.set(w.subarray(from * outFeatures, (from + 1) * outFeatures), to * outFeatures);
    }
  return out;
}

interface PendingBias {
  values: Float32Array;
  /** The spec variable that can hold it (a dense layer's own bias), or null (a conv without bias). */
  target: string | null;
  from: GraphOp;
}

/** Maps `g` onto `spec`; `archName` names the architecture in errors. */
export function mapWeights(g: ReadGraph, spec: ArchitectureSpec, archName: string, what: string): MappedWeights {
  const consumers = new Map<string, GraphOp[]>();
  for (const op of g.ops) for (const i of op.kind === 'add' ? op.inputs : [op.input]) consumers.set(i, [...(consumers.get(i) ?? []), op]);
  const producer = new Map(g.ops.map((o) => [o.output, o]));
  const used = new Set<GraphOp>();
  const values = new Map<string, Float32Array>();
  let unfolded = 0;
  let pending: PendingBias | null = null;
  let inputScale = 1;
  let flattened: number[] | null = null;

  const mismatch = (t: string, at: string, expected: string): never => {
    const next = (consumers.get(t) ?? []).find((o) => !used.has(o)) ?? producer.get(t);
    throw new AttfcError(`${what}: ${next ? describe(next) : `tensor "${t}"`} does not fit ${archName} at ${at}: expected ${expected}`);
  };
  const take = <K extends GraphOp['kind']>(t: string, kind: K): Extract<GraphOp, { kind: K }> | undefined => {
    const op = (consumers.get(t) ?? []).find((o) => o.kind === kind && !used.has(o));
    if (op) used.add(op);
    return op as Extract<GraphOp, { kind: K }> | undefined;
  };
  const flushPending = (at: string) => {
    if (!pending) return;
    if (!pending.target) throw new AttfcError(`${what}: ${describe(pending.from)} has a bias that ${archName} has no place for before ${at}`);
    values.set(pending.target, pending.values);
    pending = null;
  };

  // In-graph input scaling x*a+b: exact as a stem weight factor when it maps attfc's input to the same zero.
  let t = g.input;
  let mul = 1;
  let add = 0;
  for (let a = take(t, 'affine'); a; a = take(t, 'affine')) {
    mul *= a.mul;
    add = add * a.mul + a.add;
    t = a.output;
  }
  if (mul !== 1 || add !== 0) {
    // The file expects raw pixels r; attfc feeds n = (r - 127.5) / 127.5, so r*mul + add = 127.5*mul*n + (127.5*mul + add).
    const offset = 127.5 * mul + add;
    if (Math.abs(offset) > 1e-6 * Math.max(1, Math.abs(add)))
      throw new AttfcError(
        `${what}: the graph scales its input as x*${mul} + ${add}, which does not centre raw pixels at 127.5; attfc models take (x - 127.5) / 127.5 and cannot fold this exactly`,
      );
    inputScale = 127.5 * mul;
  }

  const walk = (nodes: LayerNode[], start: string): string => {
    let x = start;
    for (const n of nodes) {
      switch (n.op) {
        case 'conv': {
          flushPending(n.name);
          const op = take(x, 'conv') ?? mismatch(x, n.name, `a ${n.kernel}x${n.kernel} convolution ${n.inChannels}->${n.outChannels}`);
          if (op.outChannels !== n.outChannels || op.inChannels !== n.inChannels || op.kernel !== n.kernel || op.stride !== n.stride || op.pad !== n.pad || op.group !== n.groups)
            throw new AttfcError(
              `${what}: ${describe(op)} does not fit ${archName} at ${n.name}: it is a ${op.kernel}x${op.kernel} convolution ${op.inChannels}->${op.outChannels} ` +
                `(stride ${op.stride}, pad ${op.pad}, group ${op.group}); expected ${n.kernel}x${n.kernel} ${n.inChannels}->${n.outChannels} (stride ${n.stride}, pad ${n.pad}, group ${n.groups})`,
            );
          let w = convWeightFromOnnx(op.weight, n);
          if (x === t && inputScale !== 1) w = w.map((v) => v * inputScale);
          values.set(`${n.name}.weight`, w);
          if (op.bias) pending = { values: op.bias, target: null, from: op };
          x = op.output;
          break;
        }
        case 'bn': {
          const op = take(x, 'bn');
          const c = n.channels;
          if (op) {
            // attfc's eps is fixed; var + eps' - eps keeps sqrt(var + eps) exact. A folded bias b before
            // the norm moves its mean (or stays in the dense layer's own bias).
            const mean = op.mean.slice();
            if (pending) {
              if (pending.target) values.set(pending.target, pending.values);
              else for (let i = 0; i < c; i++) mean[i] -= pending.values[i];
              pending = null;
            }
            values.set(`${n.name}.weight`, op.scale.slice());
            values.set(`${n.name}.bias`, op.bias.slice());
            values.set(`${n.name}.running_mean`, mean);
            values.set(`${n.name}.running_var`, op.variance.map((v) => Math.max(0, v + op.epsilon - BN_EPSILON)));
            x = op.output;
          } else {
            // Folded (or absent): the identity plus the bias, trainable again.
            values.set(`${n.name}.weight`, new Float32Array(c).fill(1));
            values.set(`${n.name}.bias`, pending ? pending.values.slice() : new Float32Array(c));
            values.set(`${n.name}.running_mean`, new Float32Array(c));
            values.set(`${n.name}.running_var`, new Float32Array(c).fill(1 - BN_EPSILON));
            if (pending) unfolded++;
            pending = null;
          }
          break;
        }
        case 'prelu': {
          flushPending(n.name);
          const op = take(x, 'prelu') ?? mismatch(x, n.name, `a PReLU over ${n.channels} channels`);
          values.set(`${n.name}.weight`, op.slope.length === 1 ? new Float32Array(n.channels).fill(op.slope[0]) : op.slope.slice());
          x = op.output;
          break;
        }
        case 'residual': {
          const body = walk(n.body, x);
          const shortcut = n.shortcut.length > 0 ? walk(n.shortcut, x) : x;
          flushPending('a residual add');
          const op = (consumers.get(body) ?? []).find((o) => o.kind === 'add' && !used.has(o) && o.inputs.includes(shortcut));
          if (!op) mismatch(body, `the residual add after ${blockName(n.body)}`, 'an Add of the block output and its shortcut');
          used.add(op as GraphOp);
          x = (op as GraphOp).output;
          break;
        }
        case 'flatten': {
          flushPending('the flatten');
          const op = take(x, 'flatten') ?? mismatch(x, 'the flatten before the embedding layer', 'a Flatten or Reshape to [N, features]');
          flattened = g.shapes.get(x) ?? null;
          x = op.output;
          break;
        }
        case 'dropout':
          break;
        case 'dense': {
          flushPending(n.name);
          const op = take(x, 'dense') ?? mismatch(x, n.name, `a fully connected layer ${n.inFeatures}->${n.outFeatures}`);
          if (op.inFeatures !== n.inFeatures || op.outFeatures !== n.outFeatures)
            throw new AttfcError(`${what}: ${describe(op)} does not fit ${archName} at ${n.name}: it maps ${op.inFeatures}->${op.outFeatures}; expected ${n.inFeatures}->${n.outFeatures}`);
          const [, c, side] = flattened ?? [0, n.inFeatures, 1];
          values.set(`${n.name}.weight`, permuteFlattenRows(op.weight, c, side, n.outFeatures, true));
          if (n.biasInit) values.set(`${n.name}.bias`, new Float32Array(n.outFeatures));
          if (op.bias) pending = { values: op.bias, target: n.biasInit ? `${n.name}.bias` : null, from: op };
          x = op.output;
          break;
        }
      }
    }
    return x;
  };

  const end = walk(spec.nodes, t);
  flushPending('the output');
  if (end !== g.output) mismatch(end, 'the output', `the graph output "${g.output}" after the last layer`);
  const unused = g.ops.find((o) => !used.has(o));
  if (unused) throw new AttfcError(`${what}: ${describe(unused)} does not fit ${archName}: the architecture has no place for it`);
  for (const p of paramSpecs(spec)) {
    const v = values.get(p.name);
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (!v || v.length !== size) throw new Error(`mapWeights: ${p.name} got ${v?.length ?? 0} values, expected ${size}`);
  }
  return { values, unfoldedBatchNorms: unfolded, inputScale };
}

/** The block a residual body belongs to, from its first named layer (e.g. layer1.0). */
function blockName(body: LayerNode[]): string {
  const first = body.find((n) => 'name' in n);
  return first && 'name' in first ? first.name.replace(/\.[^.]*$/, '') : 'a block';
}
