import * as tf from '@tensorflow/tfjs-core';
import { KdShapeError } from '../errors.js';
import type { ExampleId } from '../io/teacherOutputs.js';
import { DEFAULT_BATCH_SIZE, disposeBatch, isDatasetLike, positiveInteger, type DatasetLike, type DistillationBatch } from '../inputs/batches.js';
import { mapInputs, tensorsOf, type ModelInputs } from '../inputs/modelInputs.js';
import { idsRequired, idTensor, readIds } from './ids.js';
import { isTopKLogits } from '../losses/topK.js';
import type { Teacher, TeacherPrediction } from './teacher.js';
import type { TeacherCache } from './TeacherCache.js';

/** What `TeacherCache.fromTeacher` scores: tensors with one id per row, or a dataset of batches with ids. */
export type TeacherData = { x: ModelInputs; ids: readonly ExampleId[] | tf.Tensor } | DatasetLike<DistillationBatch>;

/**
 * Runs `teacher` once over `data` and stores its outputs in `cache` by id:
 * `{ x, ids }` in batches of `batchSize` rows (default 32), a dataset batch
 * by batch (its tensors disposed as they are used).
 * @internal
 */
export async function scoreInto(
  cache: Pick<TeacherCache, 'addBatch'>,
  teacher: Teacher,
  data: TeacherData,
  options: { temperature: number; batchSize?: number },
): Promise<void> {
  const { temperature } = options;
  const score = async (inputs: ModelInputs, ids: tf.Tensor) => {
    const out = (await teacher.predict(inputs, { temperature, ids })) as TeacherPrediction;
    try {
      const idList = await readIds(ids, 'the ids');
      const values = isTopKLogits(out) ? out.logits : out;
      if (values.rank !== 2 || values.shape[0] !== idList.length || (isTopKLogits(out) && out.ids.shape.join() !== values.shape.join())) {
        throw new KdShapeError(
          'BATCH_SIZE_MISMATCH',
          `the teacher returned [${values.shape.join(', ')}] for a batch of ${idList.length} ids: it must return [batch, classes] ` +
            '(or top-k ids and logits, both [batch, k])',
        );
      }
      const batch = { ids: idList, logits: Float32Array.from((await values.data()) as Float32Array), numClasses: values.shape[1]! };
      cache.addBatch(isTopKLogits(out) ? { ...batch, topIds: Int32Array.from((await out.ids.data()) as Int32Array) } : batch);
    } finally {
      tf.dispose(isTopKLogits(out) ? [out.ids, out.logits] : out);
    }
  };
  if (isDatasetLike<DistillationBatch>(data)) {
    const iterator = await data.iterator();
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      const element = next.value;
      try {
        if (element.id === undefined) throw idsRequired('TeacherCache.fromTeacher');
        await score(element.teacherXs ?? element.xs, element.id);
      } finally {
        disposeBatch(element);
      }
    }
    return;
  }
  const { x, ids } = data;
  const idList = ids instanceof tf.Tensor ? await readIds(ids, 'ids') : [...ids];
  const rows = tensorsOf(x)[0]?.shape[0] ?? 0;
  if (rows !== idList.length) {
    throw new KdShapeError('LENGTH_MISMATCH', `x has ${rows} rows but there are ${idList.length} ids: give one id per row`);
  }
  const batchSize = positiveInteger(options.batchSize ?? DEFAULT_BATCH_SIZE, 'batchSize');
  for (let start = 0; start < rows; start += batchSize) {
    const size = Math.min(batchSize, rows - start);
    const batchX = mapInputs(x, (t) => tf.slice(t, [start], [size]));
    const batchIds = idTensor(idList.slice(start, start + size));
    try {
      await score(batchX, batchIds);
    } finally {
      tf.dispose([...tensorsOf(batchX), batchIds]);
    }
  }
}
