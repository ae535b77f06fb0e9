import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { DatasetLike, DistillationBatch } from '../inputs/batches.js';
import type { ModelInputs } from '../inputs/modelInputs.js';
import type { TeacherOutputs, TeacherOutputSpec } from '../teachers/outputSpec.js';
import type { asTeacher, Teacher, TeacherLike } from '../teachers/teacher.js';
import type { DistillerCallbacks } from './callbacks.js';
import type { Seed, withSeed } from './seed.js';
import type { CheckpointOptions } from './checkpointing.js';
import type { ParallelTrainer } from './parallel.js';
import type { FeatureSpec } from './features.js';
import type { OptimizerName } from './compileConfig.js';
import type { DistillationSettings } from './trainStep.js';
import type { Distiller } from './Distiller.js';

// The options of the Distiller's constructor and methods (re-exported by Distiller.ts).

/** Options of the {@link Distiller} constructor. */
export interface DistillerConfig {
  /** The frozen teacher: a LayersModel, GraphModel-like object, function or {@link Teacher}. */
  teacher: TeacherLike;
  /** The model to train. Must be built (its first layer has an `inputShape`). */
  student: tfl.LayersModel;
  /** What the student returns: `'logits'` (default) or `'probs'` for a student ending in softmax. */
  studentOutputs?: TeacherOutputs;
  /** What the teacher returns, when {@link asTeacher}'s detection should be overridden. */
  teacherOutputs?: TeacherOutputs | TeacherOutputSpec;
}

/** Options of {@link Distiller.compile}. */
export interface DistillerCompileArgs extends DistillationSettings {
  /** A tfjs optimizer (e.g. `tf.train.adam(1e-3)`) or its name. */
  optimizer: tf.Optimizer | OptimizerName;
  /**
   * Intermediate-layer terms (see docs/features.md): each pulls a student
   * layer's output toward a teacher layer's, added to the loss with its
   * weight; logged as `feature_loss`. Needs a LayersModel teacher.
   */
  features?: FeatureSpec[];
}

/** Validation data for {@link Distiller.fit}: `[x, y?]` or an object that may carry teacher inputs. */
export type ValidationData =
  | [ModelInputs]
  | [ModelInputs, tf.Tensor | undefined]
  | { x: ModelInputs; y?: tf.Tensor; teacherInputs?: ModelInputs; mask?: tf.Tensor };

/** Options shared by {@link Distiller.fit} and {@link Distiller.fitDataset}. */
export interface BaseFitArgs {
  /** Number of passes over the data (default 1). */
  epochs?: number;
  /** Epoch index to start from, for resumed runs (default 0). */
  initialEpoch?: number;
  /** tfjs callbacks (`tf.callbacks.earlyStopping(...)`, `new CustomCallback(...)`) or `{ onEpochEnd, ... }` objects. */
  callbacks?: DistillerCallbacks;
  /** 0: silent (default); 1: one line per epoch on the console. In a Node terminal, see `progressBar` in `kd-ts/node`. */
  verbose?: 0 | 1;
  /**
   * Seed for shuffling and for every tfjs random draw during the run
   * (dropout). Same seed, same student and data: same final weights on the
   * cpu backend. Build the student inside {@link withSeed} to make its
   * initialization repeat as well.
   */
  seed?: Seed;
  /**
   * Train data-parallel on worker threads: `workerPool({ workers })` from
   * `kd-ts/node`. Same logs, callbacks and History; the student's weights are
   * updated at the end of every epoch. Options it cannot honour yet are a
   * `KdConfigError` `PARALLEL_UNSUPPORTED`.
   */
  parallel?: ParallelTrainer;
  /** Write checkpoints (default: at every epoch end) to resume from; see docs/checkpoints.md. */
  checkpoint?: CheckpointOptions;
  /** Continue from the newest good checkpoint in `checkpoint.store` (a fresh start when it is empty). */
  resume?: boolean;
}

/** Options of {@link Distiller.fit}. */
export interface DistillerFitArgs extends BaseFitArgs {
  /** Examples per step (default 32). */
  batchSize?: number;
  /** Shuffle the examples every epoch (default true). */
  shuffle?: boolean;
  /** Data scored at the end of every epoch; its metrics get a `val_` prefix. */
  validationData?: ValidationData;
  /** What the teacher reads when it differs from the student's inputs (same rows, same order). */
  teacherInputs?: ModelInputs;
  /** Token-level students only: `[rows, time]`, 1 for a token that counts, 0 for padding. */
  mask?: tf.Tensor;
}

/** Options of {@link Distiller.fitDataset}. */
export interface DistillerFitDatasetArgs extends BaseFitArgs {
  /** Batches per epoch; by default an epoch ends when the dataset does. */
  batchesPerEpoch?: number;
  /** A dataset of batches, or tensors, scored at the end of every epoch. */
  validationData?: DatasetLike<DistillationBatch> | ValidationData;
  /** Every `iterator()` yields the same batches: a resume skips the batches done (exact); otherwise it restarts at the last epoch end. */
  deterministic?: boolean;
}

/** Options of {@link Distiller.evaluate}. */
export interface DistillerEvaluateArgs {
  /** Examples per batch (default 32). */
  batchSize?: number;
  /** What the teacher reads when it differs from the student's inputs. */
  teacherInputs?: ModelInputs;
  /** Token-level students only: `[rows, time]`, 1 for a token that counts, 0 for padding. */
  mask?: tf.Tensor;
}
