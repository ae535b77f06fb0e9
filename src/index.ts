/**
 * kd-ts: knowledge distillation for TensorFlow.js.
 *
 * The root entry holds what a typical program imports: the errors, the
 * distillation loss, teachers and caches, the {@link Distiller} and its
 * training step, seeding, backend choice, the compression report, the
 * BiLSTM student and the text pipeline's main entry points. Lower-level
 * pieces live on subpath entries, one per area: `kd-ts/losses`,
 * `kd-ts/teachers`, `kd-ts/distill`, `kd-ts/io`, `kd-ts/text`,
 * `kd-ts/backend`, `kd-ts/layers`, and `kd-ts/node` for Node-only helpers.
 *
 * @module kd-ts
 */
export { KdError, KdConfigError, KdShapeError, KdDataError, KdBackendError, type KdErrorCode } from './errors.js';
export { softmaxWithTemperature, logSoftmaxWithTemperature } from './losses/softmaxWithTemperature.js';
export { distillationLoss, type DistillationKind, type DistillationLossOptions } from './losses/distillationLoss.js';
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
} from './teachers/teacher.js';
export type {
  TeacherOutputExactness,
  TeacherOutputForm,
  TeacherOutputs,
  TeacherOutputSpec,
} from './teachers/outputSpec.js';
export type { ModelInputs } from './inputs/modelInputs.js';
export type { DatasetLike, DistillationBatch } from './inputs/batches.js';
export {
  EnsembleTeacher,
  type EnsembleCombine,
  type EnsembleMember,
  type EnsembleTeacherOptions,
} from './teachers/EnsembleTeacher.js';
export {
  TeacherCache,
  type FromTeacherOptions,
  type TeacherCacheOptions,
  type TeacherCacheSetOptions,
} from './teachers/TeacherCache.js';
export type { CacheRows } from './teachers/cacheRows.js';
export type { TeacherData } from './teachers/fillCache.js';
export { cachedTeacher, type CachedTeacher, type CachedTeacherOptions } from './teachers/cachedTeacher.js';
export type { ExampleId, TeacherOutputBatch } from './io/teacherOutputs.js';
export { Distiller, type OptimizerName } from './distill/Distiller.js';
export type {
  BaseFitArgs,
  DistillerCompileArgs,
  DistillerConfig,
  DistillerEvaluateArgs,
  DistillerFitArgs,
  DistillerFitDatasetArgs,
  ValidationData,
} from './distill/distillerOptions.js';
export type { DistillerCallbacks } from './distill/callbacks.js';
export type { CheckpointOptions } from './distill/checkpointing.js';
export type { CheckpointRecord, CheckpointStore } from './checkpoints/store.js';
export {
  createTrainStep,
  type StepBatch,
  type StepLogs,
  type TrainStep,
  type TrainStepOptions,
  type DistillationSettings,
} from './distill/trainStep.js';
export type { StepTeacherOutputs } from './distill/stepData.js';
export { withSeed, seededRandom, type Seed } from './distill/seed.js';
export { withDistillationHead, type CompileForDistillationOptions } from './distill/fitWrapper.js';
export { computeTeacherLogits, type ComputeTeacherLogitsOptions } from './distill/computeTeacherLogits.js';
export {
  pickTrainingBackend,
  type BackendChoice,
  type PickBackendOptions,
  type TrainingBackendName,
} from './backend/pickBackend.js';
export { enableWasmTraining } from './backend/wasm.js';
export { registerKdLayers } from './layers/register.js';
export {
  compressionReport,
  formatCompressionReport,
  type CompressionReport,
  type CompressionReportOptions,
  type ModelMeasurements,
  type QuantizedMeasurements,
} from './report/compressionReport.js';
export { buildBiLstmStudent } from './students/buildBiLstmStudent.js';
export {
  biLstmStudentParamCount,
  type BiLstmStudentOptions,
  type EmbeddingMode,
  type PretrainedEmbeddings,
} from './students/biLstmOptions.js';
export { tokenize, type Tokenizer } from './text/tokenize.js';
export {
  Vocabulary,
  type EncodeBatchOptions,
  type EncodeOptions,
  type FromCorpusOptions,
  type TokenizerName,
  type VocabularyJson,
} from './text/Vocabulary.js';
export { augment, type AugmentOptions } from './text/augment.js';
export { onnxTeacher, type OnnxSessionLike, type OnnxTeacher, type OnnxTeacherOptions } from './teachers/onnxTeacher.js';
export {
  transformersTeacher,
  type TextsById,
  type TransformersModelLike,
  type TransformersPipelineLike,
  type TransformersTeacher,
  type TransformersTeacherOptions,
  type TransformersTokenizerLike,
} from './teachers/transformersTeacher.js';
