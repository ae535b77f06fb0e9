import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { KdDataError } from '../errors.js';
import { registerKdLayers } from '../layers/register.js';

const MODEL_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';

/**
 * Saves a model to a directory in tfjs's layers format (`model.json` +
 * `weights.bin`), the files `tf.loadLayersModel` reads over HTTP and
 * `tfjs-node`'s `file://` handler reads from disk. Works without tfjs-node.
 *
 * Files are written to temporary names and renamed into place, so an
 * interrupted save never leaves a half-written model over a good one.
 *
 * @param model - The model (e.g. `distiller.student`).
 * @param directory - Target directory; created if missing.
 * @returns tfjs's save result (sizes).
 *
 * @example
 * ```ts
 * import { saveStudent } from 'kd-ts/node';
 * await saveStudent(distiller.student, './student');
 * ```
 */
export async function saveStudent(model: tfl.LayersModel, directory: string): Promise<tf.io.SaveResult> {
  await fs.mkdir(directory, { recursive: true });
  return model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0));
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      await writeAtomic(path.join(directory, WEIGHTS_FILE), new Uint8Array(weightData));
      await writeAtomic(path.join(directory, MODEL_FILE), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

/**
 * Loads a model saved by {@link saveStudent} (or any tfjs layers-format
 * directory), registering kd-ts's custom layers first.
 *
 * @param directory - Directory holding `model.json` and its weight files.
 * @returns The model, with the saved weights.
 * @throws `KdDataError` (code `CORRUPT_FILE`) when `model.json` is missing or invalid, or the
 *   weight files are shorter or longer than the manifest says.
 *
 * @example
 * ```ts
 * import { loadStudent } from 'kd-ts/node';
 * const student = await loadStudent('./student');
 * ```
 */
export async function loadStudent(directory: string): Promise<tfl.LayersModel> {
  registerKdLayers();
  const modelPath = path.join(directory, MODEL_FILE);
  let modelJson: tf.io.ModelJSON;
  try {
    modelJson = JSON.parse(await fs.readFile(modelPath, 'utf8')) as tf.io.ModelJSON;
  } catch (error) {
    throw new KdDataError(
      'CORRUPT_FILE',
      `cannot read ${modelPath}: ${(error as Error).message}; save the model with saveStudent(model, directory) first`,
    );
  }
  if (modelJson === null || typeof modelJson !== 'object' || modelJson.modelTopology == null) {
    throw new KdDataError('CORRUPT_FILE', `${modelPath} has no modelTopology: it is not a tfjs layers model`);
  }
  const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const specs = manifest.flatMap((group) => group.weights);
    const buffers: ArrayBuffer[] = [];
    for (const group of manifest) {
      for (const file of group.paths) {
        const bytes = await fs.readFile(path.join(directory, file));
        buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      }
    }
    const data = tf.io.CompositeArrayBuffer.join(buffers);
    const expected = specs.reduce((sum, s) => sum + byteSize(s), 0);
    if (data.byteLength !== expected) {
      throw new KdDataError(
        'CORRUPT_FILE',
        `the weight files in ${directory} hold ${data.byteLength} bytes but model.json describes ${expected}: ` +
          'the save was interrupted or the files come from different models; save the model again',
      );
    }
    return [specs, data];
  });
  return tfl.loadLayersModel(tf.io.fromMemory(artifacts));
}

function byteSize(spec: tf.io.WeightsManifestEntry): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const bytesPerValue = spec.quantization?.dtype
    ? { uint8: 1, uint16: 2, float16: 2 }[spec.quantization.dtype]
    : spec.dtype === 'bool'
      ? 1
      : 4;
  return count * bytesPerValue;
}

async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temporary, data);
  await fs.rename(temporary, file);
}
