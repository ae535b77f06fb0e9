/**
 * Reliance: the running state of tfjs-layers' `EarlyStopping` callback
 * (`wait`, `best`, `stoppedEpoch`: plain fields, reset by `onTrainBegin`),
 * read into a checkpoint and written back after a resumed run's
 * `onTrainBegin`, so patience counts across the interruption. Other tfjs
 * callbacks and user callbacks keep no state kd-ts can read.
 *
 * Checked against tfjs-layers 4.22.0 (installed): source read
 * (`dist/callbacks.js`), behaviour tested in test/distill/checkpointing.test.ts.
 *
 * @packageDocumentation
 */
import * as tfl from '@tensorflow/tfjs-layers';

/** One EarlyStopping callback's state. */
export interface EarlyStoppingState {
  wait: number;
  best: number;
  stoppedEpoch: number;
}

type Fields = Partial<EarlyStoppingState>;

function earlyStoppers(callbacks: unknown): Fields[] {
  const list = callbacks === undefined ? [] : Array.isArray(callbacks) ? callbacks : [callbacks];
  return list.filter((c): c is Fields => c instanceof tfl.EarlyStopping);
}

/**
 * The state of every `tf.callbacks.earlyStopping` among the callbacks, in order.
 *
 * @param callbacks - A fit call's `callbacks` option.
 * @returns One entry per EarlyStopping callback.
 */
export function readEarlyStopping(callbacks: unknown): EarlyStoppingState[] {
  return earlyStoppers(callbacks).map((c) => ({ wait: Number(c.wait ?? 0), best: Number(c.best ?? NaN), stoppedEpoch: Number(c.stoppedEpoch ?? 0) }));
}

/**
 * Writes states read by {@link readEarlyStopping} back, in order (extra entries are ignored).
 *
 * @param callbacks - The resumed fit call's `callbacks` option.
 * @param states - The saved states.
 */
export function writeEarlyStopping(callbacks: unknown, states: readonly EarlyStoppingState[]): void {
  earlyStoppers(callbacks).forEach((c, i) => {
    const s = states[i];
    if (s === undefined) return;
    c.wait = s.wait;
    c.best = s.best;
    c.stoppedEpoch = s.stoppedEpoch;
  });
}
