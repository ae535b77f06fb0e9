/**
 * `?mode=store` of the checkpoint test page: the IndexedDB store on its own,
 * in the real browser. `phase=write` writes a small good record, then starts
 * a large write and says `data-status="writing"` without waiting for it (the
 * test reloads the page right then); `phase=check` reads every record back
 * and checks each one's bytes against what its manifest says was written.
 */
import { KdDataError } from 'kd-ts';
import { indexedDbCheckpointStore } from 'kd-ts/distill';

/** What `?mode=store` reports in `window.__kdStore`. */
export interface StorePageReport {
  /** Per record: its name, its length in bytes, and whether every byte is as written. */
  records?: Array<{ name: string; bytes: number; intact: boolean }>;
  /** Errors `read` rejected with, by record. */
  readErrors?: Record<string, string>;
  /** The error `read` gave for a missing record. */
  missing?: { kdDataError: boolean; code: unknown };
  error?: string;
}

declare global {
  interface Window {
    __kdStore?: StorePageReport;
  }
}

/** Bytes of the large record: big enough that its write is still running when the page reloads. */
const LARGE = 48 << 20;

/**
 * Runs one phase of the store check.
 *
 * @param phase - `write` or `check`.
 * @param setStatus - Sets the page's `data-status`.
 */
export async function storeMode(phase: string, setStatus: (status: string, text: string) => void): Promise<void> {
  const report: StorePageReport = {};
  window.__kdStore = report;
  const store = indexedDbCheckpointStore('store-check');
  if (phase === 'write') {
    await store.write(record('step-000000001', 1 << 16, 1));
    void store.write(record('step-000000002', LARGE, 2)); // not awaited: the page reloads during it
    setStatus('writing', 'writing a large record: reload now');
    return;
  }
  report.records = [];
  report.readErrors = {};
  for (const name of await store.list()) {
    try {
      const read = await store.read(name);
      const { bytes, fill } = read.manifest as { bytes: number; fill: number };
      const view = new Uint8Array(read.weights);
      report.records.push({ name, bytes: view.length, intact: view.length === bytes && view.every((value, i) => value === pattern(i, fill)) });
    } catch (error) {
      report.readErrors[name] = error instanceof Error ? error.message : String(error);
    }
  }
  report.missing = await store.read('step-404').then(
    () => ({ kdDataError: false, code: 'no error' }),
    // instanceof, not error.name: a minifying bundler renames classes.
    (error: unknown) => ({ kdDataError: error instanceof KdDataError, code: (error as { code?: unknown }).code }),
  );
  setStatus('done', 'checked');
}

function record(name: string, bytes: number, fill: number): { name: string; manifest: Record<string, unknown>; weights: ArrayBuffer } {
  const weights = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 1) weights[i] = pattern(i, fill);
  return { name, manifest: { bytes, fill }, weights: weights.buffer };
}

function pattern(index: number, fill: number): number {
  return (index * 31 + fill * 7) & 0xff;
}
