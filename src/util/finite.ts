// Finiteness checks for what training writes and what a model outputs: a NaN or an infinity found
// here means divergence, and is reported instead of being saved or passed on.

/** Index of the first NaN or infinite value, or -1. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) return i; // NaN and +-Infinity (Infinity - Infinity is NaN)
  }
  return -1;
}

/** The first non-finite value as text ("NaN", "Infinity", "-Infinity"), or null when all are finite. */
export function nonFiniteValue(values: ArrayLike<number>): string | null {
  const i = firstNonFinite(values);
  return i < 0 ? null : String(values[i]);
}
