/**
 * Joins a stream of inputs with a stream of teacher outputs by id, in the
 * inputs' order, with bounded memory. Browser-safe.
 *
 * @packageDocumentation
 */
import { KdConfigError, KdDataError } from '../errors.js';
import { DEFAULT_BATCH_SIZE, positiveInteger } from '../inputs/batches.js';
import { checkTeacherOutputs, formatId, IdChecker, type ExampleId, type TeacherOutputBatch } from './teacherOutputs.js';

/** Options of {@link alignTeacherOutputs}. */
export interface AlignTeacherOutputsOptions<E> {
  /** Rows per yielded batch (default 32). */
  batchSize?: number;
  /** Reads an input's id (default `input.id`). */
  idOf?: (input: E) => ExampleId;
  /**
   * Teacher rows held while waiting for their input (default 65 536). Rows
   * arriving in the inputs' order need none; a larger shuffle between the two
   * streams fails with `OUT_OF_ORDER` rather than filling memory.
   */
  maxPending?: number;
}

/** A batch of inputs with their teacher outputs, row `i` for `inputs[i]`. */
export interface AlignedTeacherBatch<E> {
  /** The inputs, in their stream's order. */
  inputs: E[];
  /** Their ids. */
  ids: ExampleId[];
  /** `inputs.length × numClasses` teacher outputs, row `i` for `inputs[i]`. */
  logits: Float32Array;
  /** Values per row. */
  numClasses: number;
}

const DEFAULT_MAX_PENDING = 65_536;

/**
 * Streams inputs and teacher outputs together, matched by id, in the order of
 * the inputs. Both streams are read once, as they go: when the teacher's rows
 * come in the inputs' order (the usual case: the same files written by the
 * same job), nothing is held but the current batch; rows that come early wait
 * in a buffer of at most `maxPending` rows.
 *
 * Every mismatch is an error: an input id without a teacher row
 * (`MISSING_ID`), a teacher row no input asks for (`EXTRA_ID`), an id twice
 * among the pending teacher rows (`DUPLICATE_ID`), strings on one side and
 * numbers on the other (`ID_TYPE_MISMATCH`).
 *
 * @param inputs - Input rows, each with an id (e.g. parsed JSONL records `{ id, text, label }`).
 * @param teacherOutputs - Teacher-output batches from any reader (or several, chained).
 * @param options - See {@link AlignTeacherOutputsOptions}.
 * @returns An async generator of {@link AlignedTeacherBatch}es of `batchSize` rows.
 * @throws {@link KdDataError} `MISSING_ID`, `EXTRA_ID`, `DUPLICATE_ID`, `ID_TYPE_MISMATCH`, `OUT_OF_ORDER`,
 *   naming the id, the input's position and the teacher row's file and line.
 * @throws {@link KdConfigError} `INVALID_TOP_K` for top-k teacher outputs (read those into a `TeacherCache`).
 *
 * @example
 * ```ts
 * import { alignTeacherOutputs, readJsonlTeacherOutputs } from 'kd-ts/io';
 * const inputs = [{ id: 1, text: 'great' }, { id: 0, text: 'awful' }];
 * const teacher = readJsonlTeacherOutputs('{"id":0,"logits":[3,-3]}\n{"id":1,"logits":[-2,2]}\n');
 * for await (const batch of alignTeacherOutputs(inputs, teacher, { batchSize: 2 })) {
 *   console.log(batch.ids, batch.logits); // [1, 0] Float32Array [-2, 2, 3, -3]
 * }
 * ```
 */
export function alignTeacherOutputs<E>(
  inputs: AsyncIterable<E> | Iterable<E>,
  teacherOutputs: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  options: AlignTeacherOutputsOptions<E> = {},
): AsyncGenerator<AlignedTeacherBatch<E>> {
  return alignTeacherOutputsStream<E>(inputs, teacherOutputs, options);
}

async function* alignTeacherOutputsStream<E>(
  inputs: AsyncIterable<E> | Iterable<E>,
  teacherOutputs: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  options: AlignTeacherOutputsOptions<E> = {},
): AsyncGenerator<AlignedTeacherBatch<E>> {
  const batchSize = positiveInteger(options.batchSize ?? DEFAULT_BATCH_SIZE, 'batchSize');
  const maxPending = positiveInteger(options.maxPending ?? DEFAULT_MAX_PENDING, 'maxPending');
  const idOf = options.idOf ?? ((input: E) => (input as { id: ExampleId }).id);
  const teacher = checkTeacherOutputs(teacherOutputs)[Symbol.asyncIterator]();
  const inputIds = new IdChecker();
  /** Teacher rows read ahead of their input: a copy of the row and where it came from. */
  const pending = new Map<ExampleId, { values: Float32Array; at: string }>();
  let current: TeacherOutputBatch | undefined;
  let row = 0;
  let teacherDone = false;
  let teacherKind: 'string' | 'number' | undefined;

  const where = (batch: TeacherOutputBatch, r: number) => batch.locate?.(r) ?? `teacher row ${r}`;
  /** Advances to the next teacher row; false at the end. */
  const nextTeacherRow = async (): Promise<boolean> => {
    while (current === undefined || row >= current.ids.length) {
      if (teacherDone) return false;
      const next = await teacher.next();
      if (next.done) {
        teacherDone = true;
        current = undefined;
        return false;
      }
      current = next.value;
      row = 0;
      if (current.topIds !== undefined) {
        throw new KdConfigError(
          'INVALID_TOP_K',
          `${where(current, 0)}: top-k teacher outputs (class ids and values) cannot be streamed with alignTeacherOutputs / ` +
            'zipTeacherOutputs yet: read them into a TeacherCache (readTeacherCache), which serves them by id',
        );
      }
      if (current.ids.length > 0) teacherKind ??= typeof current.ids[0] === 'string' ? 'string' : 'number';
    }
    return true;
  };

  let batchInputs: E[] = [];
  let batchIds: ExampleId[] = [];
  let values: Float32Array | undefined;
  let position = 0;
  for await (const input of inputs) {
    const at = position++;
    const id = inputIds.check(idOf(input), () => `input #${at}`);
    let found = pending.get(id)?.values;
    if (found !== undefined) {
      pending.delete(id);
    } else {
      while (found === undefined && (await nextTeacherRow())) {
        const teacherId = current!.ids[row]!;
        if (teacherKind !== inputIds.idKind) {
          throw new KdDataError(
            'ID_TYPE_MISMATCH',
            `input #${at} has id ${formatId(id)} (a ${inputIds.idKind}) but the teacher outputs have ${teacherKind} ids ` +
              `(${where(current!, row)}: ${formatId(teacherId)}): give both the same id type (17 and "17" are different ids)`,
          );
        }
        const C = current!.numClasses;
        const rowValues = current!.logits.subarray(row * C, (row + 1) * C);
        if (teacherId === id) {
          found = rowValues;
        } else {
          if (pending.has(teacherId)) {
            throw new KdDataError(
              'DUPLICATE_ID',
              `${where(current!, row)}: id ${formatId(teacherId)} appears twice in the teacher outputs ` +
                `(also at ${pending.get(teacherId)!.at}): ids must be unique per example`,
            );
          }
          pending.set(teacherId, { values: rowValues.slice(), at: where(current!, row) });
          if (pending.size > maxPending) {
            throw new KdDataError(
              'OUT_OF_ORDER',
              `looking for the teacher output of input #${at} (id ${formatId(id)}), ${pending.size} teacher rows went by ` +
                `(up to ${where(current!, row)}): the teacher outputs are not in the inputs' order. Write both in the same ` +
                'order, raise maxPending, or load the outputs into a TeacherCache (random access by id)',
            );
          }
        }
        row++;
      }
      if (found === undefined) {
        throw new KdDataError(
          'MISSING_ID',
          `input #${at} has id ${formatId(id)} but no teacher output has it: compute its output, or drop the ` +
            'input (if the id appears twice among the inputs, ids must be unique per example)',
        );
      }
    }
    values ??= new Float32Array(batchSize * found.length);
    values.set(found, batchIds.length * found.length);
    batchInputs.push(input);
    batchIds.push(id);
    if (batchIds.length === batchSize) {
      yield { inputs: batchInputs, ids: batchIds, logits: values, numClasses: found.length };
      batchInputs = [];
      batchIds = [];
      values = undefined;
    }
  }
  if (batchIds.length > 0) {
    const C = values!.length / batchSize;
    yield { inputs: batchInputs, ids: batchIds, logits: values!.slice(0, batchIds.length * C), numClasses: C };
  }
  const [extraId, extra] = pending.entries().next().value ?? [];
  if (extra !== undefined) {
    throw new KdDataError(
      'EXTRA_ID',
      `${extra.at}: the teacher output for id ${formatId(extraId)} matches no input (${pending.size} such rows): ` +
        'the inputs lack this example, or the id appears twice in the teacher outputs',
    );
  }
  if (await nextTeacherRow()) {
    throw new KdDataError(
      'EXTRA_ID',
      `${where(current!, row)}: the teacher output for id ${formatId(current!.ids[row])} matches no input: ` +
        'the inputs ended first; they lack this example, or the id appears twice in the teacher outputs',
    );
  }
}
