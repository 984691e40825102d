// Which attfc backbone an ONNX graph is, from its structure alone (initializer names are often bare
// numbers): the stem convolution tells IResNet (3x3 stride 1) from MobileFaceNet (3x3 stride 2), the
// residual Adds per stage give the depth, the channel counts the width, the last dense layer the
// embedding size. The weight mapping then checks every layer against the architecture this proposes.
import { AttfcError } from '../errors.js';
import { IRESNET_LAYERS, type IResNetName } from '../backbones/iresnet.js';
import { MOBILEFACENET_CONFIGS, type MobileFaceNetName } from '../backbones/mobilefacenet.js';
import type { BackboneName } from '../backbones/registry.js';
import type { BackboneOptions } from '../backbones/types.js';
import { describeNode, type ConvOp, type GraphOp, type ReadGraph } from './graph.js';

export interface RecognisedArchitecture {
  backbone: BackboneName;
  /** inputSize, embeddingSize, widthMultiplier and (MobileFaceNet, when not the name's own) mbfScale. */
  options: BackboneOptions;
  /** Human-readable, e.g. "MobileFaceNet blocks (1,4,6,2), scale 1". */
  description: string;
}

/** Keys attfc writes into an exported file's metadata_props; they settle widths structure cannot. */
export const METADATA_KEYS = {
  backbone: 'attfc.backbone',
  widthMultiplier: 'attfc.widthMultiplier',
  mbfScale: 'attfc.mbfScale',
} as const;


/** Residual Adds per stage; a stage starts at each stride-2 3x3 convolution (the stem's own, for MobileFaceNet, starts stage 0). */
function addsPerStage(ops: GraphOp[]): number[] {
  const counts: number[] = [];
  let strided = 0;
  for (const op of ops) {
    if (op.kind === 'conv' && op.stride === 2 && op.kernel === 3) strided++;
    if (op.kind === 'add') {
      const stage = strided - 1;
      while (counts.length <= stage) counts.push(0);
      if (stage >= 0) counts[stage]++;
    }
  }
  return counts;
}

function sameBlocks(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * The architectures `g` may be, most likely first (the weight mapping decides); `hints` are the file's
 * metadata_props. A graph that is neither family is refused here with one line.
 */
export function recogniseArchitecture(g: ReadGraph, hints: Map<string, string>, what: string): RecognisedArchitecture[] {
  let t = g.input;
  let stem: GraphOp | undefined;
  // Skip an in-graph input scaling (Sub/Mul) to find the stem.
  for (;;) {
    stem = g.ops.find((o) => o.kind !== 'add' && o.input === t);
    if (stem?.kind !== 'affine') break;
    t = stem.output;
  }
  if (!stem || stem.kind !== 'conv' || stem.inChannels !== 3 || stem.kernel !== 3)
    throw new AttfcError(
      `${what}: ${stem ? describeNode(stem.node) : 'the input'} is not a 3x3 convolution of the RGB input; attfc imports insightface IResNet-18/34/50/100/200 and MobileFaceNet`,
    );
  const dense = [...g.ops].reverse().find((o) => o.kind === 'dense');
  if (!dense || dense.kind !== 'dense') throw new AttfcError(`${what}: no fully connected (Gemm/MatMul) layer produces the embedding; not an insightface recognition model`);
  const embeddingSize = dense.outFeatures;
  const inputSize = g.inputSize ?? 112;
  const hintedWidth = hints.has(METADATA_KEYS.widthMultiplier) ? Number(hints.get(METADATA_KEYS.widthMultiplier)) : undefined;
  const conv = stem as ConvOp;

  if (conv.stride === 1) {
    const stages = addsPerStage(g.ops);
    const name = (Object.keys(IRESNET_LAYERS) as IResNetName[]).find((n) => sameBlocks(IRESNET_LAYERS[n], stages));
    if (!name)
      throw new AttfcError(
        `${what}: an IResNet-like graph (3x3 stride-1 stem) with [${stages}] residual blocks per stage; attfc knows ${Object.entries(IRESNET_LAYERS)
          .map(([n, b]) => `${n} [${b}]`)
          .join(', ')}`,
      );
    const widthMultiplier = hintedWidth ?? conv.outChannels / 64;
    return [
      {
        backbone: name,
        options: { inputSize, embeddingSize, widthMultiplier },
        description: `IResNet-${name.slice(1)}${widthMultiplier !== 1 ? ` x${widthMultiplier}` : ''}`,
      },
    ];
  }
  if (conv.stride === 2) {
    const counts = addsPerStage(g.ops);
    const blocks = [counts[0] || 1, counts[1] ?? 0, counts[2] ?? 0, counts[3] ?? 0];
    const name = (Object.keys(MOBILEFACENET_CONFIGS) as MobileFaceNetName[]).find((n) => sameBlocks(MOBILEFACENET_CONFIGS[n].blocks, blocks));
    if (!name || counts.length > 4)
      throw new AttfcError(
        `${what}: a MobileFaceNet-like graph (3x3 stride-2 stem) with blocks (${counts.length > 4 ? counts : blocks}); attfc knows ${Object.entries(MOBILEFACENET_CONFIGS)
          .map(([n, c]) => `${n} (${c.blocks})`)
          .join(', ')}`,
      );
    const own = MOBILEFACENET_CONFIGS[name].scale;
    const hintedScale = hints.has(METADATA_KEYS.mbfScale) ? Number(hints.get(METADATA_KEYS.mbfScale)) : undefined;
    // insightface widens a MobileFaceNet only through `scale` (stem channels 64*scale), so that comes first;
    // attfc's widthMultiplier also scales the 512-wide head, which the embedding layer's input shows.
    const headWidth = dense.inFeatures / 512;
    const tries: [number, number][] = [];
    if (hintedWidth !== undefined || hintedScale !== undefined) tries.push([hintedWidth ?? 1, hintedScale ?? own]);
    tries.push([1, conv.outChannels / 64], [headWidth, own], [headWidth, conv.outChannels / (64 * headWidth)]);
    const seen = new Set<string>();
    return tries
      .filter(([w, s]) => !seen.has(`${w}/${s}`) && seen.add(`${w}/${s}`))
      .map(([widthMultiplier, scale]) => {
        const options: BackboneOptions = { inputSize, embeddingSize, widthMultiplier };
        if (scale !== own) options.mbfScale = scale;
        return {
          backbone: name,
          options,
          description: `MobileFaceNet blocks (${blocks}), scale ${scale}${widthMultiplier !== 1 ? `, width x${widthMultiplier}` : ''}`,
        };
      });
  }
  throw new AttfcError(`${what}: ${describeNode(stem.node)} has stride ${conv.stride}; an insightface stem has stride 1 (IResNet) or 2 (MobileFaceNet)`);
}
