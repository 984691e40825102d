// Float64 reductions in numpy's summation order, so that means, standard deviations and distances
// round exactly like the Python reference scripts (numpy's pairwise summation, 8 accumulators).

const PW_BLOCKSIZE = 128;

/** numpy's pairwise sum of a[start], a[start+stride], ... (n terms), as np.add.reduce computes it. */
export function pairwiseSum(a: ArrayLike<number>, start = 0, n = a.length - start, stride = 1): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i * stride];
    return res;
  }
  if (n <= PW_BLOCKSIZE) {
    const r = new Float64Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[start + j * stride];
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[start + (i + j) * stride];
    let res = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i * stride];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2, stride) + pairwiseSum(a, start + n2 * stride, n - n2, stride);
}

/** np.mean of a 1-D float64 array. */
export function npMean(a: ArrayLike<number>): number {
  return pairwiseSum(a) / a.length;
}

/** np.std (population, ddof 0) of a 1-D float64 array. */
export function npStd(a: ArrayLike<number>): number {
  const m = npMean(a);
  const sq = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - m;
    sq[i] = d * d;
  }
  return Math.sqrt(pairwiseSum(sq) / a.length);
}

/**
 * Python's '%.<digits>f' formatting: the exact binary value rounded half-to-even, where JavaScript's
 * toFixed rounds exact ties up (0.015625 -> '0.01562' in Python, '0.01563' in toFixed).
 */
export function formatFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : x < 0 ? '-inf' : 'nan';
  if (Math.abs(x) >= 1e21) return x.toFixed(digits);
  const exact = Math.abs(x).toFixed(100); // every double >= 2^-50 prints exactly within 100 digits
  const [intPart, frac] = exact.split('.');
  const kept = intPart + frac.slice(0, digits);
  const rest = frac.slice(digits);
  let up = false;
  if (rest[0] > '5') up = true;
  else if (rest[0] === '5') {
    const tie = /^50*$/.test(rest);
    up = !tie || Number(kept[kept.length - 1]) % 2 === 1;
  }
  const s = (BigInt(kept) + (up ? 1n : 0n)).toString().padStart(digits + 1, '0');
  const body = digits > 0 ? `${s.slice(0, s.length - digits)}.${s.slice(s.length - digits)}` : s;
  const negative = x < 0 || Object.is(x, -0);
  return negative ? `-${body}` : body;
}
