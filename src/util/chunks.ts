// Large float tables are kept as several Float32Arrays (one array is limited to 2^32 - 1 elements, and
// checkpoints may chunk them differently); this copies one flat stream into another chunking.
export function copyChunked(src: readonly Float32Array[], dst: readonly Float32Array[]): void {
  let di = 0;
  let doff = 0;
  for (const p of src) {
    let po = 0;
    while (po < p.length) {
      const d = dst[di];
      const n = Math.min(p.length - po, d.length - doff);
      d.set(p.subarray(po, po + n), doff);
      po += n;
      doff += n;
      if (doff === d.length) {
        di++;
        doff = 0;
      }
    }
  }
}
