import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { teacherModels, type TeacherLike } from '../teachers/teacher.js';

/** Size of a model: parameters, and bytes saved in tfjs's layers format. */
export interface ModelSize {
  /** `countParams()`. */
  parameters: number;
  /** `weightBytes` plus the UTF-8 length of `model.json`. */
  bytes: number;
  /** Bytes of the weight data (`weights.bin`). */
  weightBytes: number;
}

const UNKNOWN: ModelSize = { parameters: Number.NaN, bytes: Number.NaN, weightBytes: Number.NaN };

/**
 * Saves the model into memory through `tf.io.withSaveHandler` and counts what
 * `saveStudent` would write: the weight data, and a `model.json` holding the
 * topology and the weight manifest (no optimizer state, no training config).
 */
export async function modelSize(model: tfl.LayersModel): Promise<ModelSize> {
  return { parameters: model.countParams(), ...artifactsSize(await modelArtifacts(model)) };
}

/** What `model.save` hands an IOHandler, captured in memory. */
export async function modelArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  return saved!;
}

/** Bytes of saved artifacts as `saveStudent` writes them: the weight data plus `model.json` (UTF-8). */
export function artifactsSize(artifacts: tf.io.ModelArtifacts): { bytes: number; weightBytes: number } {
  const weightBytes = byteLength(artifacts.weightData);
  const modelJson = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: ['./weights.bin'], weights: artifacts.weightSpecs ?? [] }],
  };
  const jsonBytes = new TextEncoder().encode(JSON.stringify(modelJson)).byteLength;
  return { bytes: weightBytes + jsonBytes, weightBytes };
}

/**
 * Size of a teacher that is not a LayersModel: the size given by the user, or
 * the sum over the models it is built from when every part is a LayersModel
 * (an `EnsembleTeacher` of models), else unknown (`NaN`).
 */
export async function teacherSize(
  teacher: TeacherLike,
  given?: { parameters: number; bytes: number; weightBytes?: number },
): Promise<ModelSize> {
  if (given !== undefined) {
    return { parameters: given.parameters, bytes: given.bytes, weightBytes: given.weightBytes ?? Number.NaN };
  }
  // Known only when every part of the teacher is a LayersModel (an EnsembleTeacher of models, say).
  const { models, complete } = teacherModels(teacher);
  if (!complete) return UNKNOWN;
  const sizes = await Promise.all(models.map(modelSize));
  return sizes.reduce(
    (sum, s) => ({
      parameters: sum.parameters + s.parameters,
      bytes: sum.bytes + s.bytes,
      weightBytes: sum.weightBytes + s.weightBytes,
    }),
    { parameters: 0, bytes: 0, weightBytes: 0 },
  );
}

function byteLength(data: tf.io.WeightData | undefined): number {
  if (data === undefined) return 0;
  return Array.isArray(data) ? data.reduce((sum, buffer) => sum + buffer.byteLength, 0) : data.byteLength;
}
