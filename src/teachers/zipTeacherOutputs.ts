import type * as tf from '@tensorflow/tfjs-core';
import { alignTeacherOutputs, type AlignTeacherOutputsOptions } from '../io/align.js';
import type { TeacherOutputBatch } from '../io/teacherOutputs.js';
import { idTensor, readContextIds } from './ids.js';
import { DEFAULT_BATCH_SIZE } from '../inputs/batches.js';
import { TeacherCache } from './TeacherCache.js';
import type { DatasetLike, DistillationBatch } from '../inputs/batches.js';
import type { ModelInputs } from '../inputs/modelInputs.js';
import type { TeacherOutputs, TeacherOutputSpec } from './outputSpec.js';
import type { Teacher } from './teacher.js';

/** Options of {@link zipTeacherOutputs}. */
export interface ZipTeacherOutputsOptions<E> extends AlignTeacherOutputsOptions<E> {
  /** Turns a batch of input rows into tensors (`xs`, and `ys`/`teacherXs` when wanted). */
  toTensors: (inputs: E[]) => { xs: ModelInputs; ys?: tf.Tensor; teacherXs?: ModelInputs };
  /** What the stored rows are (default `'logits'`; see `TeacherCacheOptions.outputs`). */
  outputs?: TeacherOutputs | TeacherOutputSpec;
}

/** What {@link zipTeacherOutputs} returns: a dataset and the teacher that serves it. */
export interface ZippedTeacherData {
  /** `{ xs, ys?, teacherXs?, id }` batches, for `Distiller.fitDataset`. */
  dataset: DatasetLike<DistillationBatch & { id: tf.Tensor }>;
  /** Serves each batch's teacher rows by id, then forgets them. */
  teacher: Teacher;
}

/**
 * Trains from teacher outputs too large for memory: streams inputs and
 * teacher outputs together by id (see {@link alignTeacherOutputs}) and
 * returns a dataset of `{ xs, ys?, id }` batches plus the teacher that serves
 * their rows. Only the batches between the dataset and the teacher, and rows
 * waiting for their input, are in memory. Every epoch re-reads both streams,
 * in the inputs' order (shuffle the inputs upstream, e.g. per shard, if
 * needed; `maxPending` bounds how far the teacher rows may trail).
 *
 * @param inputs - Returns a fresh stream of input rows each epoch.
 * @param teacherOutputs - Returns a fresh stream of teacher-output batches each epoch (e.g. `() => readTeacherOutputs(dir)`).
 * @param options - See {@link ZipTeacherOutputsOptions}.
 * @returns `{ dataset, teacher }` for `new Distiller({ teacher, student }).fitDataset(dataset)`.
 * @throws (while iterating) `MISSING_ID`, `EXTRA_ID`, `DUPLICATE_ID`, `OUT_OF_ORDER`, `ID_TYPE_MISMATCH`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Distiller } from 'kd-ts';
 * import { readTeacherOutputs } from 'kd-ts/node';
 * import { zipTeacherOutputs } from 'kd-ts/teachers';
 *
 * // Your input rows, in any order, with the ids of the teacher's rows (an async reader fits too).
 * const inputRows = [{ id: 0, tokens: [5, 8, 2] }, { id: 1, tokens: [7, 3, 0] }];
 * const { dataset, teacher } = zipTeacherOutputs(
 *   () => inputRows,
 *   () => readTeacherOutputs('teacher-outputs/'), // part-00000.jsonl, part-00001.jsonl, ...
 *   { batchSize: 64, toTensors: (rows) => ({ xs: tf.tensor2d(rows.map((r) => r.tokens), undefined, 'int32') }) },
 * );
 * const student = tfl.sequential({ layers: [
 *   tfl.layers.embedding({ inputDim: 10, outputDim: 8, inputLength: 3 }),
 *   tfl.layers.flatten(),
 *   tfl.layers.dense({ units: 2 }),
 * ] });
 * const distiller = new Distiller({ teacher, student });
 * distiller.compile({ optimizer: 'adam', temperature: 4 });
 * await distiller.fitDataset(dataset, { epochs: 3 });
 * ```
 */
export function zipTeacherOutputs<E>(
  inputs: () => AsyncIterable<E> | Iterable<E>,
  teacherOutputs: () => AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  options: ZipTeacherOutputsOptions<E>,
): ZippedTeacherData {
  const window = new TeacherCache({ outputs: options.outputs ?? 'logits', initialCapacity: options.batchSize ?? DEFAULT_BATCH_SIZE });
  const teacher: Teacher = {
    outputs: window.outputs,
    predict: async (_inputs, context) => {
      const ids = await readContextIds(context, 'zipTeacherOutputs');
      const rows = window.get(ids);
      window.delete(ids);
      return rows;
    },
  };
  const dataset: ZippedTeacherData['dataset'] = {
    iterator: async () => {
      const aligned = alignTeacherOutputs(inputs(), teacherOutputs(), options)[Symbol.asyncIterator]();
      return {
        next: async () => {
          const next = await aligned.next();
          if (next.done) return { done: true, value: undefined };
          const batch = next.value;
          // A row left from an abandoned pass is replaced, not an error.
          window.addBatch({ ids: batch.ids, logits: batch.logits, numClasses: batch.numClasses }, { overwrite: true });
          const tensors = options.toTensors(batch.inputs);
          return { done: false, value: { ...tensors, id: idTensor(batch.ids) } };
        },
      };
    },
  };
  return { dataset, teacher };
}
