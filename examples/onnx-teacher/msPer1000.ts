/**
 * Inference time per 1,000 rows: the median of 3 timed runs after one
 * warm-up (the protocol of the SST-2 example and of `compressionReport`).
 *
 * @param run - One timed pass over `rows` rows.
 * @param rows - Rows per pass.
 * @returns Milliseconds per 1,000 rows.
 */
export async function msPer1000(run: () => Promise<void>, rows: number): Promise<number> {
  await run();
  const times: number[] = [];
  for (let r = 0; r < 3; r++) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return (times[1]! * 1000) / rows;
}
