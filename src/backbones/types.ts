// Public types shared by every backbone (IResNet, MobileFaceNet) and the model export.
import type * as tf from '@tensorflow/tfjs-core';

export interface BackboneOptions {
  /** Square input side in pixels (112 standard; 56, 48, 32 for CPU experiments). */
  inputSize?: number;
  /** Scales every channel count (rounded, at least 8); 1 = the reference widths. */
  widthMultiplier?: number;
  /** Output embedding dimension D. */
  embeddingSize?: number;
  /** Dropout rate before the IResNet embedding layer (training only); ignored by MobileFaceNet. */
  dropout?: number;
  /** Seed for weight initialisation and dropout masks. */
  seed?: number;
  /**
   * MobileFaceNet only: insightface's `scale` (stem and stage widths 64*scale and 128*scale; the expansion
   * widths and the 512-wide head stay). Default 2 for mbf, 4 for mbf_large. Imported models use it.
   */
  mbfScale?: number;
  /** Mixed precision is not supported on TensorFlow.js backends. */
  fp16?: never;
}

/** Options with every default filled in (mbfScale stays absent when the backbone's own scale applies). */
export type ResolvedBackboneOptions = Required<Omit<BackboneOptions, 'fp16' | 'mbfScale'>> & Pick<BackboneOptions, 'mbfScale'>;

/**
 * One stored tensor of a backbone. `param` is trained by the optimizer, `frozen` is counted as a
 * parameter but never trained (IResNet's BN1d scale), `buffer` is a batch-norm running statistic.
 */
export interface NamedVariable {
  name: string;
  variable: tf.Variable;
  kind: 'param' | 'frozen' | 'buffer';
}

export interface Backbone {
  readonly name: string;
  readonly options: ResolvedBackboneOptions;
  /** Every variable in a stable order with stable names (PyTorch state_dict keys); checkpoints rely on both. */
  variables(): NamedVariable[];
  /** The variables with kind 'param', in the order of variables(). */
  trainableVariables(): tf.Variable[];
  /**
   * Raw embeddings [B, D] of NHWC images already normalised to (x/255-0.5)/0.5.
   * `training` uses batch statistics and updates the BN running statistics (and applies dropout).
   */
  apply(x: tf.Tensor4D, training: boolean): tf.Tensor2D;
  /** The reference parameter count: every 'param' and 'frozen' element (running statistics excluded). */
  paramCount(): number;
  /** Copies every variable (parameters and running statistics) from a backbone of the same architecture. */
  copyFrom(other: Backbone): void;
  /**
   * State of the generator that draws dropout masks (JSON-able), for checkpoints: a resumed run
   * continues the same masks. Absent on backbones without dropout.
   */
  randomState?(): number[];
  setRandomState?(state: readonly (number | null)[]): void;
  /**
   * Calls `tap(index, gradient)` during back-propagation through a training-mode apply(), as soon as the
   * gradient of trainableVariables()[index] is complete (its one use in the forward pass is reached);
   * null removes it. Data-parallel training starts each gradient bucket's allreduce from here, while the
   * rest of the backward pass still runs. The tap must not dispose `gradient`.
   */
  setGradientTap?(tap: GradientTap | null): void;
  dispose(): void;
}

export type GradientTap = (index: number, gradient: tf.Tensor) => void;
