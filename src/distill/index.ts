/**
 * kd-ts/distill: training a student against a teacher. The Keras-like
 * {@link Distiller}, the single step under it for custom loops, seeding, and
 * the `model.fit` route (a student wrapped with a distillation head, trained
 * on teacher logits computed beforehand).
 *
 * @module kd-ts/distill
 */
export { Distiller, type OptimizerName } from './Distiller.js';
export type {
  BaseFitArgs,
  DistillerCompileArgs,
  DistillerConfig,
  DistillerEvaluateArgs,
  DistillerFitArgs,
  DistillerFitDatasetArgs,
  ValidationData,
} from './distillerOptions.js';
export type { DatasetLike, DistillationBatch } from '../inputs/batches.js';
export type { DistillerCallbacks } from './callbacks.js';
export {
  createTrainStep,
  type StepBatch,
  type StepLogs,
  type TrainStep,
  type TrainStepOptions,
  type DistillationSettings,
} from './trainStep.js';
export type { StepTeacherOutputs } from './stepData.js';
export { withSeed, seededRandom, type Seed } from './seed.js';
export {
  linearSchedule,
  cosineSchedule,
  stepSchedule,
  warmup,
  describeSchedule,
  type Schedule,
  type ScheduleSpec,
  type DescribedSchedule,
  type ScheduleDuration,
  type RampOptions,
  type StepScheduleOptions,
  type WarmupOptions,
  type StepContext,
} from './schedules.js';
export type { StepSettings } from './stepSettings.js';
export {
  withDistillationHead,
  compileForDistillation,
  distillationFitLosses,
  DISTILLATION_HEAD_OUTPUTS,
  type CompileForDistillationOptions,
  type DistillationFitLossOptions,
  type FitLoss,
} from './fitWrapper.js';
export { computeTeacherLogits, type ComputeTeacherLogitsOptions } from './computeTeacherLogits.js';
export type { ParallelTrainer, ParallelRun, ParallelRunSpec, ParallelBatch } from './parallel.js';
export type { FeatureSpec } from './features.js';
export type { CheckpointRecord, CheckpointStore } from '../checkpoints/store.js';
export type { CheckpointOptions } from './checkpointing.js';
export { indexedDbCheckpointStore, type IndexedDbCheckpointStoreOptions } from '../checkpoints/indexedDbStore.js';
