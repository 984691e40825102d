// IResNet (insightface arcface_torch iresnet.py) as an architecture spec. Names are the PyTorch
// state_dict keys. Differences from the reference, by design: the input size is a parameter (the fc
// input follows the final feature map) and the flatten runs over NHWC (h, w, c) instead of NCHW.
import type { ArchitectureSpec, LayerNode, InitRule } from './spec.js';
import { convOutputSize, scaleChannels } from './spec.js';
import type { ResolvedBackboneOptions } from './types.js';

/** Blocks per stage for each depth. */
export const IRESNET_LAYERS = {
  r18: [2, 2, 2, 2],
  r34: [3, 4, 6, 3],
  r50: [3, 4, 14, 3],
  r100: [3, 13, 30, 3],
  r200: [6, 26, 60, 6],
} as const;

export type IResNetName = keyof typeof IRESNET_LAYERS;

const STAGE_WIDTHS = [64, 128, 256, 512];
// arcface_torch: nn.init.normal_(conv.weight, 0, 0.1)
const CONV_INIT: InitRule = { type: 'normal', std: 0.1 };

function conv(name: string, inC: number, outC: number, kernel: number, stride: number, pad: number): LayerNode {
  return { op: 'conv', name, inChannels: inC, outChannels: outC, kernel, stride, pad, groups: 1, init: CONV_INIT };
}

function bn(name: string, channels: number, frozenScale = false): LayerNode {
  return { op: 'bn', name, channels, frozenScale };
}

/** IBasicBlock: BN, conv3x3, BN, PReLU, conv3x3(stride), BN; plus a conv1x1+BN shortcut when shape changes. */
function basicBlock(prefix: string, inC: number, outC: number, stride: number): LayerNode {
  const body: LayerNode[] = [
    bn(`${prefix}.bn1`, inC),
    conv(`${prefix}.conv1`, inC, outC, 3, 1, 1),
    bn(`${prefix}.bn2`, outC),
    { op: 'prelu', name: `${prefix}.prelu`, channels: outC },
    conv(`${prefix}.conv2`, outC, outC, 3, stride, 1),
    bn(`${prefix}.bn3`, outC),
  ];
  const shortcut: LayerNode[] =
    stride !== 1 || inC !== outC ? [conv(`${prefix}.downsample.0`, inC, outC, 1, stride, 0), bn(`${prefix}.downsample.1`, outC)] : [];
  return { op: 'residual', body, shortcut };
}

export function iresnetSpec(name: IResNetName, o: ResolvedBackboneOptions): ArchitectureSpec {
  const widths = STAGE_WIDTHS.map((c) => scaleChannels(c, o.widthMultiplier));
  const stem = widths[0];
  const nodes: LayerNode[] = [conv('conv1', 3, stem, 3, 1, 1), bn('bn1', stem), { op: 'prelu', name: 'prelu', channels: stem }];
  let side = o.inputSize;
  let inC = stem;
  IRESNET_LAYERS[name].forEach((blocks, s) => {
    for (let i = 0; i < blocks; i++) {
      const stride = i === 0 ? 2 : 1;
      nodes.push(basicBlock(`layer${s + 1}.${i}`, inC, widths[s], stride));
      inC = widths[s];
      side = convOutputSize(side, 3, stride, 1);
    }
  });
  const flat = inC * side * side;
  // PyTorch nn.Linear default init: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)), same for the bias.
  const bound = 1 / Math.sqrt(flat);
  nodes.push(
    bn('bn2', inC),
    { op: 'flatten' },
    { op: 'dropout', rate: o.dropout },
    {
      op: 'dense',
      name: 'fc',
      inFeatures: flat,
      outFeatures: o.embeddingSize,
      weightInit: { type: 'uniform', bound },
      biasInit: { type: 'uniform', bound },
    },
    bn('features', o.embeddingSize, true),
  );
  return { inputSize: o.inputSize, inputChannels: 3, embeddingSize: o.embeddingSize, nodes };
}
