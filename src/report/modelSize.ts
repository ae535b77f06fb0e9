import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { isLayersModel, type TeacherLike } from '../teachers/teacher.js';

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
  let size: ModelSize = UNKNOWN;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightBytes = byteLength(artifacts.weightData);
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['./weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      const jsonBytes = new TextEncoder().encode(JSON.stringify(modelJson)).byteLength;
      size = { parameters: model.countParams(), bytes: weightBytes + jsonBytes, weightBytes };
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  return size;
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
  const models = leafModels(teacher);
  if (models === undefined) return UNKNOWN;
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

/**
 * The distinct LayersModels a teacher is made of, or undefined when any part
 * is something else (a function, a GraphModel), whose size cannot be known.
 */
function leafModels(teacher: unknown, seen = new Set<unknown>()): tfl.LayersModel[] | undefined {
  if (isLayersModel(teacher)) return [teacher];
  if (teacher === null || typeof teacher !== 'object' || seen.has(teacher)) return undefined;
  seen.add(teacher);
  const { members, source } = teacher as { members?: ReadonlyArray<{ source?: unknown }>; source?: unknown };
  const parts = Array.isArray(members) ? members.map((m) => m.source) : source !== undefined ? [source] : [];
  if (parts.length === 0) return undefined;
  const models: tfl.LayersModel[] = [];
  for (const part of parts) {
    const found = leafModels(part, seen);
    if (found === undefined) return undefined;
    for (const model of found) if (!models.includes(model)) models.push(model);
  }
  return models;
}

function byteLength(data: tf.io.WeightData | undefined): number {
  if (data === undefined) return 0;
  return Array.isArray(data) ? data.reduce((sum, buffer) => sum + buffer.byteLength, 0) : data.byteLength;
}
