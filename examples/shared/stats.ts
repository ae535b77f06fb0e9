/** Small summaries the examples print over seeds and runs. */

/** The arithmetic mean. */
export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** "mean ± sample sd (min to max)", or the one value. */
export function spread(values: readonly number[]): string {
  const m = mean(values);
  if (values.length < 2) return m.toFixed(2);
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1));
  return `${m.toFixed(2)} ± ${sd.toFixed(2)} (${Math.min(...values).toFixed(2)} to ${Math.max(...values).toFixed(2)})`;
}

/** A share as a percentage with two decimals, e.g. "94.15 %". */
export function pct(value: number): string {
  return `${(value * 100).toFixed(2)} %`;
}
