// Calls ATen operators by name through the addon's one generic path, caching operator ids, and frees a
// kernel's intermediate tensors when it returns.
import type { TorchAddon } from './addon.js';

export class Aten {
  private readonly ids = new Map<string, number>();

  constructor(readonly native: TorchAddon) {}

  /** Runs `aten::name[.overload]` ("add.Tensor", "convolution") with positional arguments. */
  call(qualified: string, args: unknown[]): unknown {
    let id = this.ids.get(qualified);
    if (id === undefined) {
      const dot = qualified.indexOf('.');
      id = this.native.op(`aten::${dot < 0 ? qualified : qualified.slice(0, dot)}`, dot < 0 ? '' : qualified.slice(dot + 1));
      this.ids.set(qualified, id);
    }
    return this.native.call(id, args);
  }

  /** An operator with one tensor result: its handle (owned by the caller). */
  t(qualified: string, ...args: unknown[]): number {
    return this.call(qualified, args) as number;
  }

  /** An operator with several tensor results (a tuple or a list): their handles (null: not computed). */
  ts(qualified: string, ...args: unknown[]): number[] {
    return this.call(qualified, args) as number[];
  }

  free(...handles: (number | null | undefined)[]): void {
    for (const h of handles) if (h !== null && h !== undefined) this.native.free(h);
  }
}

/**
 * The temporaries of one kernel: `op` results are freed by `close()`, so a kernel cannot leak its
 * intermediates whatever path it takes (errors included).
 */
export class Scope {
  private readonly temps: (number | null)[] = [];

  constructor(readonly aten: Aten) {}

  /** A temporary tensor result. */
  op(qualified: string, ...args: unknown[]): number {
    const h = this.aten.t(qualified, ...args);
    this.temps.push(h);
    return h;
  }

  /** Temporary tensor results of a multi-output operator. */
  ops(qualified: string, ...args: unknown[]): number[] {
    const hs = this.aten.ts(qualified, ...args);
    this.temps.push(...hs);
    return hs;
  }

  /** Marks a handle made elsewhere as temporary. */
  tmp(h: number): number {
    this.temps.push(h);
    return h;
  }

  /** Removes a temporary from the list: the caller now owns it (a kernel's result). */
  keep(h: number): number {
    const i = this.temps.lastIndexOf(h);
    if (i >= 0) this.temps.splice(i, 1);
    return h;
  }

  close(): void {
    for (const h of this.temps) if (h !== null) this.aten.native.free(h);
    this.temps.length = 0;
  }
}
