// The models bench:steps times: attfc's training step (bench/lib/step.ts: backbone, 10k-class ArcFace
// full FC, clipping, momentum SGD) and the PyTorch reference script doing the same step.
import type { StepModelId } from './flags.js';

export interface StepModel {
  label: string;
  backbone: string;
  inputSize: number;
  batch: number;
  widthMultiplier: number;
  /** Measured steps per round (after two warm-up steps). */
  steps: number;
  /** bench/reference/<script> and its arguments (threads and steps are added). */
  pytorch: [string, string[]];
}

export const STEP_MODELS: Record<StepModelId, StepModel> = {
  mbf112: {
    label: 'MobileFaceNet 112x112 b32',
    backbone: 'mbf',
    inputSize: 112,
    batch: 32,
    widthMultiplier: 1,
    steps: 5,
    pytorch: ['pytorch_mobilefacenet_step.py', ['--size', '112', '--batch', '32', '--width', '1']],
  },
  'mbf-demo': {
    label: "the demo's MobileFaceNet x0.5 32x32 b64",
    backbone: 'mbf',
    inputSize: 32,
    batch: 64,
    widthMultiplier: 0.5,
    steps: 20,
    pytorch: ['pytorch_mobilefacenet_step.py', ['--size', '32', '--batch', '64', '--width', '0.5']],
  },
  r18: {
    label: 'IResNet-18 112x112 b8',
    backbone: 'r18',
    inputSize: 112,
    batch: 8,
    widthMultiplier: 1,
    steps: 5,
    pytorch: ['pytorch_iresnet_step.py', ['--depth', '18', '--batch', '8']],
  },
  r50: {
    label: 'IResNet-50 112x112 b32',
    backbone: 'r50',
    inputSize: 112,
    batch: 32,
    widthMultiplier: 1,
    steps: 3,
    pytorch: ['pytorch_iresnet_step.py', ['--depth', '50', '--batch', '32']],
  },
};
