import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { KdDataError } from '../errors.js';
import { checkWeightSpecs, weightSpecBytes, withQuantization, type QuantizationSummary, type WeightQuantization } from '../io/quantize.js';
import { registerKdLayers } from '../layers/register.js';
import { writeAtomic } from './atomicWrite.js';

const MODEL_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';

/** Options of {@link saveStudent}. */
export interface SaveStudentOptions {
  /**
   * Store the weights quantized in tfjs's own format (see `withQuantization`
   * in `kd-ts/io`): `'uint8'` (1 byte per value, per-tensor affine),
   * `'uint16'` or `'float16'` (2 bytes). int32 and other non-float tensors,
   * tensors of fewer than `minElements` values (default 1024: biases,
   * normalization parameters, small output layers) and, for float16, tensors
   * holding values beyond ±65504 stay float32. Default: float32 throughout.
   */
  quantize?: WeightQuantization;
  /** With `quantize`: tensors with fewer values stay float32 (default 1024). */
  minElements?: number;
}

/** What {@link saveStudent} returns: tfjs's save result, plus what was quantized how. */
export interface SaveStudentResult extends tf.io.SaveResult {
  /** Per-tensor storage and bytes, when `quantize` was given. */
  quantization?: QuantizationSummary;
}

/**
 * Saves a model to a directory in tfjs's layers format (`model.json` +
 * `weights.bin`), the files `tf.loadLayersModel` reads over HTTP and
 * `tfjs-node`'s `file://` handler reads from disk. Works without tfjs-node.
 * With `quantize`, the weights are stored in 1 or 2 bytes per value in
 * tfjs's standard quantized format, which stock tfjs dequantizes on load.
 *
 * Files are written to temporary names and renamed into place, so an
 * interrupted save never leaves a half-written model over a good one.
 *
 * @param model - The model (e.g. `distiller.student`).
 * @param directory - Target directory; created if missing.
 * @param options - See {@link SaveStudentOptions}.
 * @returns tfjs's save result (sizes), with the quantization summary when quantized.
 * @throws `KdConfigError` (`INVALID_OPTION`) for an unknown `quantize` value;
 *   `KdDataError` (`NON_FINITE_WEIGHTS`) when quantizing a tensor that holds NaN or ±Infinity.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { loadStudent, saveStudent } from 'kd-ts/node';
 *
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * await saveStudent(student, './student');
 * const { quantization } = await saveStudent(student, './student-uint8', { quantize: 'uint8' });
 * console.log(quantization?.bytesAfter, 'bytes of weights instead of', quantization?.bytesBefore);
 * const loaded = await loadStudent('./student-uint8');
 * ```
 */
export async function saveStudent(model: tfl.LayersModel, directory: string, options: SaveStudentOptions = {}): Promise<SaveStudentResult> {
  await fs.mkdir(directory, { recursive: true });
  const writer = tf.io.withSaveHandler(async (artifacts) => {
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
    await writeAtomic(path.join(directory, WEIGHTS_FILE), [new Uint8Array(weightData)]);
    await writeAtomic(path.join(directory, MODEL_FILE), [JSON.stringify(modelJson)]);
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  });
  if (options.quantize === undefined) return model.save(writer);
  let quantization: QuantizationSummary | undefined;
  const result = await model.save(
    withQuantization(writer, { dtype: options.quantize, minElements: options.minElements, onQuantized: (summary) => (quantization = summary) }),
  );
  return { ...result, quantization };
}

/**
 * Loads a model saved by {@link saveStudent} (or any tfjs layers-format
 * directory), registering kd-ts's custom layers first.
 *
 * @param directory - Directory holding `model.json` and its weight files.
 * @returns The model, with the saved weights.
 * @throws `KdDataError` (code `CORRUPT_FILE`) when `model.json` is missing or invalid, a
 *   weight's quantization entry is invalid (unknown dtype, `scale` or `min` missing or not a
 *   finite number: stock tfjs would load NaN weights), or the weight files are shorter or
 *   longer than the manifest says.
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
    checkWeightSpecs(specs, modelPath);
    const buffers: ArrayBuffer[] = [];
    for (const group of manifest) {
      for (const file of group.paths) {
        const bytes = await fs.readFile(path.join(directory, file));
        buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      }
    }
    const data = tf.io.CompositeArrayBuffer.join(buffers);
    const expected = specs.reduce((sum, s) => sum + weightSpecBytes(s), 0);
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
