// Architecture description shared by everything that needs a backbone's structure: the parameter
// count (no allocation), variable creation, the training/inference forward pass and the
// tfjs-layers export. One table drives all four, so they cannot disagree.

/** How a parameter tensor is initialised (values drawn from the backbone's seeded Rng). */
export type InitRule =
  | { type: 'normal'; std: number }
  | { type: 'uniform'; bound: number }
  | { type: 'constant'; value: number };

/**
 * 2-D convolution without bias, symmetric zero padding `pad` (PyTorch semantics).
 * groups 1: dense conv. groups > 1: grouped conv (groups === channels: depthwise); its weight is stored
 * as a depthwise-multiplier filter [k, k, in, out/groups] (entry [., ., g*ci+i, o] = PyTorch W[g*co+o, i]).
 */
export interface ConvNode {
  op: 'conv';
  name: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  pad: number;
  groups: number;
  init: InitRule;
}

/** Batch norm over the last axis (eps 1e-5); `frozenScale` keeps gamma at 1 and out of training. */
export interface BatchNormNode {
  op: 'bn';
  name: string;
  channels: number;
  frozenScale: boolean;
}

/** PReLU with one slope per channel (PyTorch init 0.25). */
export interface PReLUNode {
  op: 'prelu';
  name: string;
  channels: number;
}

/** body(x) + shortcut(x); an empty shortcut is the identity. */
export interface ResidualNode {
  op: 'residual';
  body: LayerNode[];
  shortcut: LayerNode[];
}

export interface FlattenNode {
  op: 'flatten';
}

export interface DropoutNode {
  op: 'dropout';
  rate: number;
}

/** Fully connected layer; weight stored [in, out]. */
export interface DenseNode {
  op: 'dense';
  name: string;
  inFeatures: number;
  outFeatures: number;
  weightInit: InitRule;
  /** Absent: no bias. */
  biasInit?: InitRule;
}

export type LayerNode = ConvNode | BatchNormNode | PReLUNode | ResidualNode | FlattenNode | DropoutNode | DenseNode;

export interface ArchitectureSpec {
  inputSize: number;
  inputChannels: number;
  embeddingSize: number;
  nodes: LayerNode[];
}

export type ParamKind = 'param' | 'frozen' | 'buffer';

/** One variable a spec needs: PyTorch state_dict name, tfjs shape, kind and initialiser. */
export interface ParamSpec {
  name: string;
  shape: number[];
  kind: ParamKind;
  init: InitRule;
}

/** Output side of a k x k convolution/pool with symmetric padding (PyTorch's rule). */
export function convOutputSize(input: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((input + 2 * pad - kernel) / stride) + 1;
}

/** Channels per group going in and coming out of a (grouped) convolution. */
export function groupWidths(c: ConvNode): { perGroupIn: number; perGroupOut: number } {
  return { perGroupIn: c.inChannels / c.groups, perGroupOut: c.outChannels / c.groups };
}

/** Shape of a conv weight in our storage layout (see ConvNode). */
export function convWeightShape(c: ConvNode): number[] {
  return c.groups === 1
    ? [c.kernel, c.kernel, c.inChannels, c.outChannels]
    : [c.kernel, c.kernel, c.inChannels, c.outChannels / c.groups];
}

/** Every variable of the spec in forward order (which is also the PyTorch registration order). */
export function paramSpecs(spec: ArchitectureSpec): ParamSpec[] {
  const out: ParamSpec[] = [];
  const walk = (nodes: LayerNode[]): void => {
    for (const n of nodes) {
      switch (n.op) {
        case 'conv':
          out.push({ name: `${n.name}.weight`, shape: convWeightShape(n), kind: 'param', init: n.init });
          break;
        case 'bn':
          out.push(
            { name: `${n.name}.weight`, shape: [n.channels], kind: n.frozenScale ? 'frozen' : 'param', init: { type: 'constant', value: 1 } },
            { name: `${n.name}.bias`, shape: [n.channels], kind: 'param', init: { type: 'constant', value: 0 } },
            { name: `${n.name}.running_mean`, shape: [n.channels], kind: 'buffer', init: { type: 'constant', value: 0 } },
            { name: `${n.name}.running_var`, shape: [n.channels], kind: 'buffer', init: { type: 'constant', value: 1 } },
          );
          break;
        case 'prelu':
          out.push({ name: `${n.name}.weight`, shape: [n.channels], kind: 'param', init: { type: 'constant', value: 0.25 } });
          break;
        case 'dense':
          out.push({ name: `${n.name}.weight`, shape: [n.inFeatures, n.outFeatures], kind: 'param', init: n.weightInit });
          if (n.biasInit) out.push({ name: `${n.name}.bias`, shape: [n.outFeatures], kind: 'param', init: n.biasInit });
          break;
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
  walk(spec.nodes);
  return out;
}

/** The reference parameter count: 'param' + 'frozen' elements. */
export function countParams(spec: ArchitectureSpec): number {
  let n = 0;
  for (const p of paramSpecs(spec)) if (p.kind !== 'buffer') n += p.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** Channel count under a width multiplier: rounded, at least 8 (1 keeps the reference width). */
export function scaleChannels(channels: number, widthMultiplier: number): number {
  if (widthMultiplier === 1) return channels;
  return Math.max(8, Math.round(channels * widthMultiplier));
}

export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
