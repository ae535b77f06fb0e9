/**
 * `--full --checkpoint DIR`: what lets the full recipe (about an hour per
 * seed) survive a kill. Under `DIR/seed-S/`:
 * - `<key>.result.json`: each model's result as soon as it is trained; a
 *   run started again reports it instead of training the model again;
 * - `teacher.bin`: the teacher's weights, so the students of a resumed seed
 *   learn from the same teacher without training it again;
 * - `<key>/`: a `fileCheckpointStore` per distilled student, written at every
 *   epoch end; the Distiller resumes from it (`resume: true`), with the
 *   epoch's learning curve kept beside it (`<key>/curve.json`).
 * Students trained on labels alone use tfjs's own `fitDataset`, which has no
 * checkpoints: a kill during one restarts that student.
 *
 * @packageDocumentation
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { CheckpointStore } from '../../src/distill/index.js';
import { fileCheckpointStore } from '../../src/node/index.js';
import type { EpochPoint } from './train.js';

/** The checkpoint folder of one seed. */
export class SeedCheckpoints {
  readonly directory: string;

  constructor(root: string, seed: number) {
    this.directory = path.join(root, `seed-${seed}`);
  }

  /** The saved result of a model, if a previous run finished it. */
  async result<T>(key: string): Promise<T | undefined> {
    return readJson<T>(path.join(this.directory, `${key}.result.json`));
  }

  /** Saves a model's result (written whole, then renamed: a kill leaves the old file or the new one). */
  async saveResult(key: string, result: unknown): Promise<void> {
    await writeAtomically(path.join(this.directory, `${key}.result.json`), JSON.stringify(result));
  }

  /** Loads the teacher's saved weights into `model`; false when there are none. */
  async loadWeights(name: string, model: tfl.LayersModel): Promise<boolean> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path.join(this.directory, `${name}.bin`));
    } catch {
      return false;
    }
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    let offset = 0;
    const tensors = model.getWeights().map((weight) => {
      const size = weight.size;
      const tensor = tf.tensor(values.slice(offset, offset + size), weight.shape);
      offset += size;
      return tensor;
    });
    if (offset !== values.length) throw new Error(`${name}.bin holds ${values.length} weights, the model ${offset}: remove ${this.directory} or use another --checkpoint folder`);
    model.setWeights(tensors);
    tf.dispose(tensors);
    return true;
  }

  /** Saves a model's weights (float32, in `getWeights` order). */
  async saveWeights(name: string, model: tfl.LayersModel): Promise<void> {
    const parts = model.getWeights().map((weight) => weight.dataSync() as Float32Array);
    const all = new Float32Array(parts.reduce((n, part) => n + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      all.set(part, offset);
      offset += part.length;
    }
    await writeAtomically(path.join(this.directory, `${name}.bin`), new Uint8Array(all.buffer));
  }

  /** What a distilled student needs: its store and its learning curve so far. */
  async student(key: string): Promise<StudentCheckpoint> {
    const directory = path.join(this.directory, key);
    const curveFile = path.join(directory, 'curve.json');
    const curve = (await readJson<EpochPoint[]>(curveFile)) ?? [];
    return {
      store: fileCheckpointStore(directory),
      curve,
      saveCurve: async (points) => {
        await mkdir(directory, { recursive: true });
        await writeAtomically(curveFile, JSON.stringify(points));
      },
    };
  }
}

/** A distilled student's checkpoints. */
export interface StudentCheckpoint {
  store: CheckpointStore;
  /** Test errors after each epoch trained before (empty for a fresh run). */
  curve: EpochPoint[];
  saveCurve(points: EpochPoint[]): Promise<void>;
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined; // missing (or cut short by a kill before the rename: never, but then: redo it)
  }
}

async function writeAtomically(file: string, data: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, data);
  await rename(temporary, file);
}
