/**
 * kd-ts/io: teacher outputs and transfer sets as bytes and text, in the formats
 * a Python teacher writes (JSON Lines, NumPy `.npy` with an id list, Arrow IPC).
 * Parsers and encoders only, browser-safe; the file-system helpers built on
 * them are in `kd-ts/node`.
 *
 * @module kd-ts/io
 */
export {
  checkTeacherOutputs,
  type ExampleId,
  type ReadTeacherOutputsOptions,
  type TeacherOutputBatch,
} from './teacherOutputs.js';
export {
  readJsonlTeacherOutputs,
  encodeJsonlTeacherOutputs,
  type ReadJsonlOptions,
  type TextSource,
} from './jsonl.js';
export {
  readNpyTeacherOutputs,
  encodeNpyTeacherOutputs,
  parseIdList,
  encodeIdList,
  type ByteSource,
  type ParseIdListOptions,
  type ReadNpyOptions,
} from './npy.js';
export { readNpyTopKTeacherOutputs, encodeNpyTopKTeacherOutputs, type ReadNpyTopKOptions } from './npyTopK.js';
export {
  readArrowTeacherOutputs,
  encodeArrowTeacherOutputs,
  type ArrowFileHandle,
  type ArrowSource,
  type EncodeArrowOptions,
  type ReadArrowOptions,
} from './arrow.js';
export { alignTeacherOutputs, type AlignedTeacherBatch, type AlignTeacherOutputsOptions } from './align.js';
export { transferSetToJsonl, parseTransferSetJsonl, type TransferSetEntry } from './transferSet.js';
export {
  quantizeWeights,
  quantizeArtifacts,
  withQuantization,
  checkWeightSpecs,
  type WeightQuantization,
  type QuantizeOptions,
  type WithQuantizationOptions,
  type QuantizationSummary,
  type QuantizedWeightInfo,
  type KeptReason,
  type WeightsManifestDtype,
} from './quantize.js';
