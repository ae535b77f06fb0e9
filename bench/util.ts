/**
 * Helpers shared by the benchmarks: the machine description printed above
 * every table, medians, and markdown tables.
 */
import os from 'node:os';

/** `os.loadavg()` as "1.23 / 0.98 / 0.75" (1, 5 and 15 minutes). */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' / ');
}

/** CPU model and core count, e.g. "AMD EPYC 7B13, 2 cores". */
export function machine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores`;
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Prints a markdown table whose columns are padded to line up in a terminal. */
export function printTable(header: string[], rows: string[][]): void {
  console.log(formatTable(header, rows));
}

/** A markdown table whose columns are padded to line up in a terminal. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
