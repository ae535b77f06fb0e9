import * as tfl from '@tensorflow/tfjs-layers';

/** Callbacks the Distiller accepts: tfjs callbacks, `{ onEpochEnd, ... }` objects, or a list of either. */
export type DistillerCallbacks =
  | tfl.Callback
  | tfl.CustomCallbackArgs
  | Array<tfl.Callback | tfl.CustomCallbackArgs>;

/** Training-loop hooks, in call order per epoch. */
export interface LoopHooks {
  onEpochBegin(epoch: number): Promise<void>;
  onBatchBegin(batch: number, size: number): Promise<void>;
  onBatchEnd(batch: number, logs: Record<string, number>): Promise<void>;
  onEpochEnd(epoch: number, logs: Record<string, number>): Promise<void>;
}

/** Parameters handed to callbacks (`callback.params`), as tfjs's `fit` does. */
export interface CallbackParams {
  epochs: number;
  initialEpoch: number;
  steps: number | null;
  samples?: number;
  batchSize?: number;
  verbose: 0 | 1;
  doValidation: boolean;
}

/**
 * Wires tfjs callbacks around a training loop: a tfjs `History` first, the
 * user's callbacks, and an epoch logger when verbose. Callbacks get the
 * student as their model, so `tf.callbacks.earlyStopping` sets the student's
 * `stopTraining`, which the loop reads.
 */
export async function runCallbacks(
  student: tfl.LayersModel,
  callbacks: DistillerCallbacks | undefined,
  params: CallbackParams,
  loop: (hooks: LoopHooks, history: tfl.History) => Promise<void>,
): Promise<tfl.History> {
  const history = new tfl.History();
  const list: tfl.Callback[] = [history as unknown as tfl.Callback, ...toCallbackList(callbacks)];
  if (params.verbose === 1) {
    list.push(new tfl.CustomCallback({ onEpochEnd: logEpoch(params.epochs) }) as unknown as tfl.Callback);
  }
  const callbackList = new tfl.CallbackList(list);
  callbackList.setModel(student);
  const { steps, samples, batchSize, ...rest } = params;
  callbackList.setParams({
    ...rest,
    ...(steps === null ? {} : { steps }),
    ...(samples === undefined ? {} : { samples }),
    ...(batchSize === undefined ? {} : { batchSize }),
  });
  student.stopTraining = false;
  await callbackList.onTrainBegin();
  await loop({
    onEpochBegin: (epoch) => callbackList.onEpochBegin(epoch),
    onBatchBegin: (batch, size) => callbackList.onBatchBegin(batch, { batch, size }),
    onBatchEnd: (batch, logs) => callbackList.onBatchEnd(batch, logs),
    onEpochEnd: (epoch, logs) => callbackList.onEpochEnd(epoch, logs),
  }, history);
  await callbackList.onTrainEnd();
  await history.syncData();
  return history;
}

function toCallbackList(callbacks: DistillerCallbacks | undefined): tfl.Callback[] {
  if (callbacks === undefined) return [];
  const items = Array.isArray(callbacks) ? callbacks : [callbacks];
  // tfjs callbacks (BaseCallback subclasses) have setModel; plain objects become CustomCallbacks.
  return items.map((c) =>
    typeof (c as tfl.Callback).setModel === 'function'
      ? (c as tfl.Callback)
      : (new tfl.CustomCallback(c as tfl.CustomCallbackArgs) as unknown as tfl.Callback),
  );
}

function logEpoch(epochs: number) {
  return async (epoch: number, logs?: tfl.Logs) => {
    const parts = Object.entries(logs ?? {}).map(([k, v]) => `${k}=${formatNumber(v)}`);
    console.log(`Epoch ${epoch + 1}/${epochs} ${parts.join(' ')}`);
  };
}

function formatNumber(v: number): string {
  return Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(4) : v.toExponential(3);
}
