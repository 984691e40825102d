// MobileFaceNet (insightface arcface_torch mobilefacenet.py) as an architecture spec. Names are the
// PyTorch state_dict keys. The input size is a parameter: the global depthwise (GDC) kernel equals the
// final feature-map side (7 at 112). insightface's `scale` (options.mbfScale) widens only the stem and
// stage channels; attfc's widthMultiplier then scales every channel count on top of it.
import type { ArchitectureSpec, LayerNode, InitRule } from './spec.js';
import { convOutputSize, scaleChannels, gcd } from './spec.js';
import type { ResolvedBackboneOptions } from './types.js';

export const MOBILEFACENET_CONFIGS = {
  mbf: { blocks: [1, 4, 6, 2], scale: 2 },
  mbf_large: { blocks: [2, 8, 12, 4], scale: 4 },
} as const;

export type MobileFaceNetName = keyof typeof MOBILEFACENET_CONFIGS;

// Reference init: kaiming_normal_(mode='fan_out', nonlinearity='relu'); PyTorch's fan_out of a
// (grouped) conv weight [out, in/groups, k, k] is out*k*k.
function kaimingFanOut(fanOut: number): InitRule {
  return { type: 'normal', std: Math.sqrt(2 / fanOut) };
}

function convNode(name: string, inC: number, outC: number, kernel: number, stride: number, pad: number, groups: number): LayerNode {
  return { op: 'conv', name, inChannels: inC, outChannels: outC, kernel, stride, pad, groups, init: kaimingFanOut(outC * kernel * kernel) };
}

/** Conv, BN, PReLU. */
function convBlock(prefix: string, inC: number, outC: number, kernel: number, stride: number, pad: number, groups = 1): LayerNode[] {
  return [
    convNode(`${prefix}.layers.0`, inC, outC, kernel, stride, pad, groups),
    { op: 'bn', name: `${prefix}.layers.1`, channels: outC, frozenScale: false },
    { op: 'prelu', name: `${prefix}.layers.2`, channels: outC },
  ];
}

/** Conv, BN (no activation). */
function linearBlock(prefix: string, inC: number, outC: number, kernel: number, stride: number, pad: number, groups = 1): LayerNode[] {
  return [
    convNode(`${prefix}.layers.0`, inC, outC, kernel, stride, pad, groups),
    { op: 'bn', name: `${prefix}.layers.1`, channels: outC, frozenScale: false },
  ];
}

/** Inverted bottleneck: 1x1 expand to `hidden`, 3x3 depthwise (stride), 1x1 linear projection. */
function depthWise(prefix: string, inC: number, outC: number, residual: boolean, stride: number, hidden: number): LayerNode[] {
  const body = [
    ...convBlock(`${prefix}.layers.0`, inC, hidden, 1, 1, 0),
    ...convBlock(`${prefix}.layers.1`, hidden, hidden, 3, stride, 1, hidden),
    ...linearBlock(`${prefix}.layers.2`, hidden, outC, 1, 1, 0),
  ];
  return residual ? [{ op: 'residual', body, shortcut: [] }] : body;
}

function residualStage(prefix: string, channels: number, numBlocks: number, hidden: number): LayerNode[] {
  const out: LayerNode[] = [];
  for (let j = 0; j < numBlocks; j++) out.push(...depthWise(`${prefix}.layers.${j}`, channels, channels, true, 1, hidden));
  return out;
}

export function mobileFaceNetSpec(name: MobileFaceNetName, o: ResolvedBackboneOptions): ArchitectureSpec {
  const { blocks } = MOBILEFACENET_CONFIGS[name];
  const scale = o.mbfScale ?? MOBILEFACENET_CONFIGS[name].scale;
  const w = (c: number) => scaleChannels(c, o.widthMultiplier);
  const c1 = w(64 * scale);
  const c2 = w(128 * scale);
  const [h128, h256, h512] = [w(128), w(256), w(512)];
  const sepC = w(512);
  const s2 = (side: number) => convOutputSize(side, 3, 2, 1);

  const nodes: LayerNode[] = [...convBlock('layers.0', 3, c1, 3, 2, 1)];
  let side = s2(o.inputSize);
  if (blocks[0] === 1) {
    // Grouped 3x3 conv with 64 groups in the reference (2*scale/2 channels per group); gcd keeps it valid when scaled.
    nodes.push(...convBlock('layers.1', c1, c1, 3, 1, 1, gcd(c1, w(64))));
  } else {
    nodes.push(...residualStage('layers.1', c1, blocks[0], h128));
  }
  nodes.push(...depthWise('layers.2', c1, c1, false, 2, h128));
  side = s2(side);
  nodes.push(...residualStage('layers.3', c1, blocks[1], h128));
  nodes.push(...depthWise('layers.4', c1, c2, false, 2, h256));
  side = s2(side);
  nodes.push(...residualStage('layers.5', c2, blocks[2], h256));
  nodes.push(...depthWise('layers.6', c2, c2, false, 2, h512));
  side = s2(side);
  nodes.push(...residualStage('layers.7', c2, blocks[3], h256));
  nodes.push(...convBlock('conv_sep', c2, sepC, 1, 1, 0));
  // GDC head: global depthwise conv over the whole final map, flatten, linear (no bias), BN1d.
  nodes.push(
    ...linearBlock('features.layers.0', sepC, sepC, side, 1, 0, sepC),
    { op: 'flatten' },
    {
      op: 'dense',
      name: 'features.layers.2',
      inFeatures: sepC,
      outFeatures: o.embeddingSize,
      weightInit: kaimingFanOut(o.embeddingSize),
    },
    { op: 'bn', name: 'features.layers.3', channels: o.embeddingSize, frozenScale: false },
  );
  return { inputSize: o.inputSize, inputChannels: 3, embeddingSize: o.embeddingSize, nodes };
}
