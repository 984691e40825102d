// A Backbone that owns the variables of an ArchitectureSpec and runs its forward pass with tfjs-core
// ops only, so every backend (cpu, wasm + kernel pack, tfjs-node) can train it.
import * as tf from '@tensorflow/tfjs-core';
import { batchNormSyncActive, batchNormTrain, batchNormInfer, type BatchStats } from '../engine/batchNorm.js';
import { prelu } from '../engine/prelu.js';
import { createNativeGraph, nativeGraphActive, runNativeGraph } from '../engine/torch/graph.js';
import type { NativeGraph } from '../engine/torch/addon.js';
import { Rng } from '../util/rng.js';
import { initialValues } from './init.js';
import { nativeProgram, type NativeProgram } from './nativeProgram.js';
import type { ArchitectureSpec, BatchNormNode, ConvNode, DenseNode, LayerNode } from './spec.js';
import { groupWidths, paramSpecs } from './spec.js';
import type { Backbone, GradientTap, NamedVariable, ResolvedBackboneOptions } from './types.js';

/** insightface uses PyTorch's BN defaults: eps 1e-5, momentum 0.1 on the new batch value. */
export const BN_EPSILON = 1e-5;
export const BN_MOMENTUM = 0.1;

export class GraphBackbone implements Backbone {
  private readonly named: NamedVariable[];
  private readonly byName = new Map<string, tf.Variable>();
  private readonly dropoutRng: Rng;
  /** Index in trainableVariables() of each trained variable, by name (for the gradient tap). */
  private readonly trainedIndex = new Map<string, number>();
  private tap: GradientTap | null = null;
  /** Set while a training-mode apply() runs: only then are reads of trained variables tapped. */
  private tapping = false;
  /** The spec as a native graph (backend torch), made on first use. */
  private native: { program: NativeProgram; graph: NativeGraph; trainable: number[] } | null = null;

  constructor(
    readonly name: string,
    readonly options: ResolvedBackboneOptions,
    private readonly spec: ArchitectureSpec,
  ) {
    const root = new Rng(options.seed);
    const initRng = root.fork();
    this.dropoutRng = root.fork();
    this.named = paramSpecs(spec).map((p) => {
      const size = p.shape.reduce((a, b) => a * b, 1);
      const values = initialValues(p.init, size, initRng);
      // Unnamed tf variables: f_q and f_k coexist, and tfjs variable names must be unique per process.
      const variable = tf.tidy(() => tf.variable(tf.tensor(values, p.shape, 'float32'), p.kind === 'param'));
      this.byName.set(p.name, variable);
      if (p.kind === 'param') this.trainedIndex.set(p.name, this.trainedIndex.size);
      return { name: p.name, variable, kind: p.kind };
    });
  }

  setGradientTap(tap: GradientTap | null): void {
    this.tap = tap;
  }

  variables(): NamedVariable[] {
    return this.named.slice();
  }

  trainableVariables(): tf.Variable[] {
    return this.named.filter((v) => v.kind === 'param').map((v) => v.variable);
  }

  paramCount(): number {
    let n = 0;
    for (const v of this.named) if (v.kind !== 'buffer') n += v.variable.size;
    return n;
  }

  apply(x: tf.Tensor4D, training: boolean): tf.Tensor2D {
    const s = this.spec.inputSize;
    const [, h, w, c] = x.shape;
    if (x.rank !== 4 || h !== s || w !== s || c !== this.spec.inputChannels)
      throw new Error(`${this.name}.apply: expected NHWC input [B, ${s}, ${s}, ${this.spec.inputChannels}], got [${x.shape.join(', ')}]`);
    // SyncBN gathers statistics in the op-by-op batch norm, which the native graph does not run.
    if (nativeGraphActive() && !(training && batchNormSyncActive())) return tf.tidy(() => this.runNative(x, training));
    this.tapping = training && this.tap !== null;
    try {
      return tf.tidy(() => this.run(this.spec.nodes, x, training)) as tf.Tensor2D;
    } finally {
      this.tapping = false;
    }
  }

  /**
   * Per-channel mean and biased variance of every batch norm's input over `x`, in inference mode (the
   * network's function is unchanged), by batch-norm name.
   */
  normInputMoments(x: tf.Tensor4D): Map<string, { mean: Float32Array; variance: Float32Array }> {
    const out = new Map<string, { mean: Float32Array; variance: Float32Array }>();
    tf.tidy(() => {
      this.run(this.spec.nodes, x, false, (name, t) => {
        const m = tf.moments(t, [...Array(t.rank - 1).keys()]);
        out.set(name, { mean: (m.mean.dataSync() as Float32Array).slice(), variance: (m.variance.dataSync() as Float32Array).slice() });
      });
    });
    return out;
  }

  copyFrom(other: Backbone): void {
    const theirs = other.variables();
    if (other.name !== this.name || theirs.length !== this.named.length)
      throw new Error(`copyFrom: ${other.name} (${theirs.length} variables) does not match ${this.name} (${this.named.length})`);
    theirs.forEach((t, i) => {
      const mine = this.named[i];
      if (t.name !== mine.name || !tf.util.arraysEqual(t.variable.shape, mine.variable.shape))
        throw new Error(`copyFrom: variable ${i} is ${t.name} [${t.variable.shape}] but ${mine.name} [${mine.variable.shape}] was expected`);
    });
    // tfjs never mutates tensor data in place, so sharing the data until either side is reassigned is safe.
    theirs.forEach((t, i) => this.named[i].variable.assign(t.variable));
  }

  randomState(): number[] {
    return this.dropoutRng.getState();
  }

  setRandomState(state: readonly (number | null)[]): void {
    if (!Array.isArray(state) || state.length < 4 || state.slice(0, 4).some((x) => typeof x !== 'number'))
      throw new Error(`${this.name}.setRandomState: expected the 5 numbers of Rng.getState(), got ${JSON.stringify(state)}`);
    this.dropoutRng.setState(state.map((x) => (x === null ? NaN : x)));
  }

  dispose(): void {
    for (const v of this.named) v.variable.dispose();
    this.byName.clear();
  }

  private v(name: string): tf.Variable {
    const found = this.byName.get(name);
    if (!found) throw new Error(`${this.name}: no variable ${name} (disposed?)`);
    if (this.tapping) {
      const index = this.trainedIndex.get(name);
      if (index !== undefined) return this.tapped(found, index);
    }
    return found;
  }

  /**
   * `w` behind an identity whose gradient is w's whole gradient (each trained variable is read once per
   * forward pass), handed to the tap on its way back.
   */
  private tapped(w: tf.Variable, index: number): tf.Variable {
    const tap = this.tap!;
    const mark = tf.customGrad((input) => ({
      value: tf.clone(input as tf.Tensor),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
        tap(index, dy as tf.Tensor);
        return tf.clone(dy as tf.Tensor);
      },
    })) as unknown as (t: tf.Tensor) => tf.Tensor;
    // used exactly like the variable: an op input
    return mark(w) as unknown as tf.Variable;
  }

  /**
   * The same function as run(), as one native graph on backend torch (src/engine/torch/graph.ts): the
   * dropout masks are drawn as tf.dropout draws them, and the running statistics assigned as batchNorm() does.
   */
  private runNative(x: tf.Tensor4D, training: boolean): tf.Tensor2D {
    if (!this.native) {
      const index = new Map(this.named.map((v, i) => [v.name, i]));
      const program = nativeProgram(this.spec, (name) => {
        const i = index.get(name);
        if (i === undefined) throw new Error(`${this.name}: no variable ${name}`);
        return i;
      });
      const trainable = this.named.flatMap((v, i) => (v.kind === 'param' ? [i] : []));
      this.native = { program, graph: createNativeGraph(program.program), trainable };
    }
    const { program, graph, trainable } = this.native;
    const tap = training ? this.tap : null;
    const masks = training
      ? program.dropouts.map(({ rate, features }) => {
          const keep = 1 - rate;
          return tf.div(tf.floor(tf.add(tf.randomUniform([x.shape[0], features], 0, 1, 'float32', this.dropoutRng.nextUint32()), keep)), keep);
        })
      : [];
    return runNativeGraph({
      graph,
      x,
      params: this.named.map((v) => v.variable),
      trainable,
      masks,
      training,
      onStats: (stats) =>
        program.norms.forEach((name, i) => {
          this.v(`${name}.running_mean`).assign(stats[2 * i]);
          this.v(`${name}.running_var`).assign(stats[2 * i + 1]);
        }),
      // the whole backward pass is one call: its gradients reach the tap together, last layer first
      onGradients: tap ? (grads) => grads.map((g, k) => [g, k] as const).reverse().forEach(([g, k]) => tap(k, g)) : undefined,
    });
  }

  /** `observe` sees each batch norm's input (normInputMoments). */
  private run(nodes: LayerNode[], input: tf.Tensor, training: boolean, observe?: (bnName: string, x: tf.Tensor) => void): tf.Tensor {
    let x = input;
    for (const n of nodes) {
      switch (n.op) {
        case 'conv':
          x = this.conv(n, x as tf.Tensor4D);
          break;
        case 'bn':
          observe?.(n.name, x);
          x = this.batchNorm(n, x, training);
          break;
        case 'prelu':
          x = prelu(x, this.v(`${n.name}.weight`));
          break;
        case 'residual': {
          const body = this.run(n.body, x, training, observe);
          const shortcut = n.shortcut.length > 0 ? this.run(n.shortcut, x, training, observe) : x;
          x = tf.add(body, shortcut);
          break;
        }
        case 'flatten':
          x = tf.reshape(x, [x.shape[0], -1]);
          break;
        case 'dropout':
          if (training && n.rate > 0) x = tf.dropout(x, n.rate, undefined, this.dropoutRng.nextUint32());
          break;
        case 'dense':
          x = this.dense(n, x as tf.Tensor2D);
          break;
      }
    }
    return x;
  }

  private conv(n: ConvNode, x: tf.Tensor4D): tf.Tensor4D {
    const w = this.v(`${n.name}.weight`) as unknown as tf.Tensor4D;
    const strides: [number, number] = [n.stride, n.stride];
    if (n.groups === 1) return tf.conv2d(x, w, strides, n.pad);
    const { perGroupIn, perGroupOut } = groupWidths(n);
    if (perGroupIn === 1 && perGroupOut === 1) return tf.depthwiseConv2d(x, w, strides, n.pad);
    return this.groupedConv(n, x, w, perGroupIn, perGroupOut);
  }

  /**
   * Grouped conv from one channel-multiplier-1 depthwise conv: repeat every input channel `co` times
   * (channel c*co+m), convolve each copy with its own filter, then sum the `ci` inputs of each group.
   * tfjs-core has no grouped conv, and the wasm gradient kernels only cover multiplier 1.
   */
  private groupedConv(n: ConvNode, x: tf.Tensor4D, w: tf.Tensor4D, ci: number, co: number): tf.Tensor4D {
    const [b, h, wd, c] = x.shape;
    // Repeat each channel co times as a matmul with a constant 0/1 matrix: its gradient is one more
    // matmul, where broadcastTo's (Tile's) gradient is a strided Slice that wasm runs element by element.
    const r = new Float32Array(c * c * co);
    for (let i = 0; i < c; i++) for (let m = 0; m < co; m++) r[i * c * co + i * co + m] = 1;
    const repeated = tf.reshape(tf.matMul(tf.reshape(x, [b * h * wd, c]), tf.tensor2d(r, [c, c * co])), [b, h, wd, c * co]);
    const filter = tf.reshape(w, [n.kernel, n.kernel, c * co, 1]) as tf.Tensor4D;
    const y = tf.depthwiseConv2d(repeated as tf.Tensor4D, filter, [n.stride, n.stride], n.pad); // channel (g*ci+i)*co+o
    const [, oh, ow] = y.shape;
    return tf.reshape(tf.sum(tf.reshape(y, [b, oh, ow, n.groups, ci, co]), 4), [b, oh, ow, n.groups * co]);
  }

  private batchNorm(n: BatchNormNode, x: tf.Tensor, training: boolean): tf.Tensor {
    const gamma = this.v(`${n.name}.weight`) as unknown as tf.Tensor1D;
    const beta = this.v(`${n.name}.bias`) as unknown as tf.Tensor1D;
    const mean = this.v(`${n.name}.running_mean`);
    const variance = this.v(`${n.name}.running_var`);
    if (!training) return batchNormInfer(x, gamma, beta, mean as unknown as tf.Tensor1D, variance as unknown as tf.Tensor1D, BN_EPSILON);
    return batchNormTrain(x, gamma, beta, BN_EPSILON, (s: BatchStats) => {
      // PyTorch: running = (1-m)*running + m*batch, with the unbiased batch variance.
      const unbias = s.count > 1 ? s.count / (s.count - 1) : 1;
      mean.assign(tf.add(tf.mul(mean, 1 - BN_MOMENTUM), tf.mul(s.mean, BN_MOMENTUM)));
      variance.assign(tf.add(tf.mul(variance, 1 - BN_MOMENTUM), tf.mul(s.variance, BN_MOMENTUM * unbias)));
    });
  }

  private dense(n: DenseNode, x: tf.Tensor2D): tf.Tensor2D {
    const y: tf.Tensor2D = tf.matMul(x, this.v(`${n.name}.weight`) as unknown as tf.Tensor2D);
    return n.biasInit ? tf.add<tf.Tensor2D>(y, this.v(`${n.name}.bias`)) : y;
  }
}
