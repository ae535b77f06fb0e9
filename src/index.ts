/**
 * kd-ts: knowledge distillation for TensorFlow.js.
 *
 * @packageDocumentation
 */
export { KdError, KdConfigError, KdShapeError, KdDataError, KdBackendError, type KdErrorCode } from './errors.js';
export { softmaxWithTemperature, logSoftmaxWithTemperature } from './losses/softmaxWithTemperature.js';
export {
  distillationLoss,
  type DistillationKind,
  type DistillationLossOptions,
  type ResolvedLossConfig,
} from './losses/distillationLoss.js';
export {
  asTeacher,
  type AsTeacherOptions,
  type GraphModelLike,
  type ModelInputs,
  type Teacher,
  type TeacherContext,
  type TeacherFunction,
  type TeacherLike,
  type TeacherOutputs,
} from './teachers/teacher.js';
export {
  Distiller,
  type BaseFitArgs,
  type DatasetLike,
  type DistillationBatch,
  type DistillerCompileArgs,
  type DistillerConfig,
  type DistillerEvaluateArgs,
  type DistillerFitArgs,
  type DistillerFitDatasetArgs,
  type OptimizerName,
  type ValidationData,
} from './distill/Distiller.js';
export {
  createTrainStep,
  type StepBatch,
  type StepLogs,
  type TrainStep,
  type TrainStepOptions,
} from './distill/trainStep.js';
export type { DistillerCallbacks } from './distill/callbacks.js';
export { withSeed, seededRandom, type Seed } from './distill/seed.js';
export { registerKdLayers } from './layers/register.js';
export { enableWasmTraining } from './backend/wasm.js';
export { registerWasmTrainingKernels } from './backend/wasmTrainingKernels.js';
export { registerCpuTrainingKernels } from './backend/cpuTrainingKernels.js';
export { registerWasmFastMatMul, unregisterWasmFastMatMul } from './backend/wasmFastMatMul.js';
export {
  pickTrainingBackend,
  type BackendChoice,
  type PickBackendOptions,
  type TrainingBackendName,
} from './backend/pickBackend.js';
export {
  EnsembleTeacher,
  type EnsembleCombine,
  type EnsembleMember,
  type EnsembleTeacherOptions,
  type ResolvedEnsembleMember,
} from './teachers/EnsembleTeacher.js';
export { registerWasmFastSlice } from './backend/wasmSlice.js';
export {
  TeacherCache,
  type BatchDataset,
  type FromTeacherOptions,
  type IdBatch,
  type TeacherCacheOptions,
  type TeacherCacheSetOptions,
} from './teachers/TeacherCache.js';
export { cachedTeacher, type CachedTeacher } from './teachers/cachedTeacher.js';
export { zipTeacherOutputs, type ZippedTeacherData, type ZipTeacherOutputsOptions } from './teachers/zipTeacherOutputs.js';
export {
  checkTeacherOutputs,
  type ExampleId,
  type ReadTeacherOutputsOptions,
  type TeacherOutputBatch,
} from './io/teacherOutputs.js';
export {
  readJsonlTeacherOutputs,
  encodeJsonlTeacherOutputs,
  type ReadJsonlOptions,
  type TextSource,
} from './io/jsonl.js';
export {
  readNpyTeacherOutputs,
  encodeNpyTeacherOutputs,
  parseIdList,
  encodeIdList,
  npyHeader,
  type ByteSource,
  type ParseIdListOptions,
  type ReadNpyOptions,
} from './io/npy.js';
export {
  readArrowTeacherOutputs,
  encodeArrowTeacherOutputs,
  loadArrow,
  type ArrowFileHandle,
  type ArrowSource,
  type EncodeArrowOptions,
  type ReadArrowOptions,
} from './io/arrow.js';
export {
  alignTeacherOutputs,
  type AlignedTeacherBatch,
  type AlignTeacherOutputsOptions,
} from './io/align.js';
export {
  FastLSTM,
  fastLstm,
  bidirectionalFastLstm,
  type FastLstmArgs,
  type RecurrentActivationName,
  type Initializer,
  type InitializerSpec,
} from './layers/fastLstm.js';
export {
  compressionReport,
  formatCompressionReport,
  type CompressionReport,
  type CompressionReportOptions,
  type ModelMeasurements,
} from './report/compressionReport.js';
export {
  withDistillationHead,
  compileForDistillation,
  distillationFitLosses,
  DISTILLATION_HEAD_OUTPUTS,
  type CompileForDistillationOptions,
  type DistillationFitLossOptions,
  type FitLoss,
} from './distill/fitWrapper.js';
export { computeTeacherLogits, type ComputeTeacherLogitsOptions } from './distill/computeTeacherLogits.js';
export { tokenize, whitespaceTokenize, tokenizeSst2, type Tokenizer } from './text/tokenize.js';
export {
  Vocabulary,
  type EncodeBatchOptions,
  type EncodeOptions,
  type FromCorpusOptions,
  type TokenizerName,
  type VocabularyJson,
} from './text/Vocabulary.js';
export { augment, augmentPairs, type AugmentOptions } from './text/augment.js';
export { loadPosTagger, type PosTagger } from './text/posTagger.js';
export { transferSetToJsonl, parseTransferSetJsonl, type TransferSetEntry } from './io/transferSet.js';
export { buildBiLstmStudent } from './students/buildBiLstmStudent.js';
export {
  biLstmStudentParamCount,
  type BiLstmStudentOptions,
  type EmbeddingMode,
  type PretrainedEmbeddings,
} from './students/biLstmOptions.js';
export { MaskedGlobalMaxPooling1D } from './layers/maskedGlobalMaxPooling1D.js';
export { PairFeatures } from './layers/pairFeatures.js';
