// The tfjs backend 'torch': bookkeeping only (tfjs dataId -> addon tensor handle, reads, writes,
// disposal, memory). Kernels live in ./kernels and map tfjs attributes to ATen operators.
import * as tf from '@tensorflow/tfjs-core';
import type { NativeDtype, TorchAddon } from './addon.js';
import { Aten, Scope } from './aten.js';

interface TorchData {
  handle: number;
  refCount: number;
}

/** tfjs dtypes a torch tensor may carry; anything else is cast on the way out of a kernel. */
const TFJS_DTYPES = new Set<string>(['float32', 'int32', 'bool']);

export class TorchBackend extends tf.KernelBackend {
  readonly aten: Aten;
  private readonly data: tf.DataStorage<TorchData>;

  constructor(
    readonly native: TorchAddon,
    /** 'cpu' or 'cuda[:n]': where every tensor this backend makes lives. */
    readonly device: string,
  ) {
    super();
    this.aten = new Aten(native);
    this.data = new tf.DataStorage(this, tf.engine());
  }

  /** The addon handle behind a tensor (moving it here first if another backend holds it). */
  handle(t: tf.TensorInfo): number {
    return this.data.get(t.dataId).handle;
  }

  /**
   * Registers a kernel result. The result's dtype is normalised to `dtype` (or, by default, to the
   * nearest tfjs dtype: ATen returns int64 from index ops and float64 from some reductions).
   */
  output(handle: number, dtype?: tf.DataType): tf.TensorInfo {
    let h = handle;
    const meta = this.native.meta(h);
    const have = meta[0];
    const want = dtype ?? (TFJS_DTYPES.has(have) ? have : have === 'float64' ? 'float32' : 'int32');
    if (have !== want) {
      h = this.aten.t('to.dtype', handle, want);
      this.native.free(handle);
    }
    const dataId = {};
    this.data.set(dataId, { handle: h, refCount: 1 });
    return { dataId, shape: meta.slice(1) as number[], dtype: want as tf.DataType };
  }

  /** Runs `fn` with a scope whose temporaries are freed afterwards. */
  scoped<T>(fn: (s: Scope) => T): T {
    const s = new Scope(this.aten);
    try {
      return fn(s);
    } finally {
      s.close();
    }
  }

  /** A new tensor on this backend's device from JS values. */
  upload(values: tf.BackendValues, shape: number[], dtype: tf.DataType): number {
    if (dtype === 'string' || dtype === 'complex64') throw new Error(`backend torch does not support ${dtype} tensors`);
    let v = values as ArrayBufferView;
    if (dtype === 'float32' && !(v instanceof Float32Array)) v = Float32Array.from(values as ArrayLike<number>);
    else if (dtype === 'int32' && !(v instanceof Int32Array)) v = Int32Array.from(values as ArrayLike<number>);
    else if (dtype === 'bool' && !(v instanceof Uint8Array)) v = Uint8Array.from(values as ArrayLike<number>);
    return this.native.fromArray(v, shape, dtype as NativeDtype, this.device);
  }

  override write(values: tf.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId {
    const dataId = {};
    this.data.set(dataId, { handle: this.upload(values, shape, dtype), refCount: 1 });
    return dataId;
  }

  override move(dataId: tf.DataId, values: tf.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.data.set(dataId, { handle: this.upload(values, shape, dtype), refCount });
  }

  override readSync(dataId: tf.DataId): tf.BackendValues {
    return this.native.toArray(this.data.get(dataId).handle) as tf.BackendValues;
  }

  override read(dataId: tf.DataId): Promise<tf.BackendValues> {
    return Promise.resolve(this.readSync(dataId));
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    if (!this.data.has(dataId)) return true;
    const d = this.data.get(dataId);
    d.refCount--;
    if (!force && d.refCount > 0) return false;
    this.native.free(d.handle);
    this.data.delete(dataId);
    return true;
  }

  override refCount(dataId: tf.DataId): number {
    return this.data.has(dataId) ? this.data.get(dataId).refCount : 0;
  }

  override incRef(dataId: tf.DataId): void {
    this.data.get(dataId).refCount++;
  }

  override numDataIds(): number {
    return this.data.numDataIds();
  }

  override memory(): { unreliable: boolean; numBytesInTorch: number; numTorchHandles: number } {
    const m = this.native.memory();
    return { unreliable: false, numBytesInTorch: m.bytes, numTorchHandles: m.handles };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override timerAvailable(): boolean {
    return true;
  }

  override async time(f: () => void): Promise<tf.BackendTimingInfo> {
    const t0 = performance.now();
    f();
    return { kernelMs: performance.now() - t0 };
  }

  override dispose(): void {
    /* tensors are freed as tfjs disposes them; the addon's table goes with the process */
  }
}
