/**
 * Measures the peak resident memory of streaming a sharded set of teacher
 * outputs zipped with inputs by id (zipTeacherOutputs over readTeacherOutputs),
 * the way Distiller.fitDataset consumes it (one id tensor and one teacher
 * tensor per batch). Not a test: run by hand.
 *
 *   npx tsx bench/stream-rss.ts generate <dir> <rows> <classes> <jsonl|npy|arrow> [rowsPerShard]
 *   /usr/bin/time -v npx tsx bench/stream-rss.ts stream <dir> <rows> <classes> [batchSize]
 *
 * Row k holds ((k * 31 + c) % 1000) / 100 - 5 for class c, so the stream
 * checks every row it gets against its id.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { TeacherOutputBatch } from '../src/index.js';
import { zipTeacherOutputs } from '../src/teachers/index.js';
import { readTeacherOutputs, writeTeacherShards } from '../src/node/index.js';

const value = (k: number, c: number) => Math.fround(((k * 31 + c) % 1000) / 100 - 5);

async function* generated(rows: number, classes: number, batch = 4096): AsyncGenerator<TeacherOutputBatch> {
  for (let start = 0; start < rows; start += batch) {
    const n = Math.min(batch, rows - start);
    const ids = Array.from({ length: n }, (_, i) => start + i);
    const logits = new Float32Array(n * classes);
    for (let i = 0; i < n; i++) for (let c = 0; c < classes; c++) logits[i * classes + c] = value(start + i, c);
    yield { ids, logits, numClasses: classes };
  }
}

async function main() {
  const [mode, dir, rowsArg, classesArg, extra, extra2] = process.argv.slice(2);
  const rows = Number(rowsArg);
  const classes = Number(classesArg);
  if (mode === 'generate') {
    const started = Date.now();
    const format = extra as 'jsonl' | 'npy' | 'arrow';
    const written = await writeTeacherShards(generated(rows, classes), dir!, { format, rowsPerShard: Number(extra2 ?? 50_000) });
    console.log(`wrote ${written.rows} rows in ${written.files.length} files in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return;
  }
  tf.env().set('IS_TEST', true);
  await tf.setBackend('cpu');
  const batchSize = Number(extra ?? 256);
  let peak = process.memoryUsage().rss;
  const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
  const timer = setInterval(sample, 50);
  const started = Date.now();
  const { dataset, teacher } = zipTeacherOutputs(
    function* () {
      for (let id = 0; id < rows; id++) yield { id };
    },
    () => readTeacherOutputs(dir!),
    { batchSize, toTensors: (inputs) => ({ xs: tf.zeros([inputs.length, 1]) }) },
  );
  const iterator = await dataset.iterator();
  let seen = 0;
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    const { xs, id } = next.value;
    const out = await teacher.predict(xs, { temperature: 1, ids: id });
    const ids = (await id.data()) as Int32Array;
    const values = (await out.data()) as Float32Array;
    // Spot-check the first and last class of every row against its id.
    for (let i = 0; i < ids.length; i++) {
      if (values[i * classes] !== value(ids[i]!, 0) || values[(i + 1) * classes - 1] !== value(ids[i]!, classes - 1)) {
        throw new Error(`row for id ${ids[i]} is wrong`);
      }
    }
    seen += ids.length;
    tf.dispose([xs as tf.Tensor, id, out]);
    sample();
  }
  clearInterval(timer);
  const seconds = (Date.now() - started) / 1000;
  console.log(
    JSON.stringify({
      rows: seen,
      classes,
      gigabytes: (seen * classes * 4) / 1e9,
      seconds: Number(seconds.toFixed(1)),
      peakRssMiB: Math.round(peak / 2 ** 20),
      tensorsLeft: tf.memory().numTensors,
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
