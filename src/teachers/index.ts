/**
 * kd-ts/teachers: what the student learns from. A model or function wrapped as
 * a {@link Teacher}, ensembles of teachers, and teacher outputs computed once
 * and looked up by example id (in memory, or zipped with a dataset).
 *
 * @module kd-ts/teachers
 */
export {
  asTeacher,
  type AsTeacherOptions,
  type GraphModelLike,
  type Teacher,
  type TeacherContext,
  type TeacherFunction,
  type TeacherLike,
  type TeacherModels,
  type TeacherPrediction,
} from './teacher.js';
export {
  teacherOutputSpec,
  type TeacherOutputExactness,
  type TeacherOutputForm,
  type TeacherOutputs,
  type TeacherOutputSpec,
} from './outputSpec.js';
export type { ModelInputs } from '../inputs/modelInputs.js';
export type { DatasetLike, DistillationBatch } from '../inputs/batches.js';
export {
  EnsembleTeacher,
  type EnsembleCombine,
  type EnsembleMember,
  type EnsembleTeacherOptions,
} from './EnsembleTeacher.js';
export {
  TeacherCache,
  type FromTeacherOptions,
  type TeacherCacheOptions,
  type TeacherCacheSetOptions,
} from './TeacherCache.js';
export type { CacheRows } from './cacheRows.js';
export type { TeacherData } from './fillCache.js';
export { cachedTeacher, type CachedTeacher, type CachedTeacherOptions } from './cachedTeacher.js';
export { zipTeacherOutputs, type ZippedTeacherData, type ZipTeacherOutputsOptions } from './zipTeacherOutputs.js';
export {
  onnxTeacher,
  type OnnxInputData,
  type OnnxInputType,
  type OnnxSessionLike,
  type OnnxTeacher,
  type OnnxTeacherOptions,
  type OnnxTensorConstructor,
  type OnnxTensorLike,
  type OnnxValueMetadata,
} from './onnxTeacher.js';
export {
  transformersTeacher,
  type TextsById,
  type TransformersEncoding,
  type TransformersModelLike,
  type TransformersPipelineLike,
  type TransformersTeacher,
  type TransformersTeacherOptions,
  type TransformersTensorLike,
  type TransformersTokenizerCallOptions,
  type TransformersTokenizerLike,
} from './transformersTeacher.js';
