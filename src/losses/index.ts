/**
 * kd-ts/losses: the distillation losses and the temperature softmax they are
 * built on. Plain tensor functions, usable in any custom training loop.
 *
 * @module kd-ts/losses
 */
export { softmaxWithTemperature, logSoftmaxWithTemperature } from './softmaxWithTemperature.js';
export { distillationLoss, type DistillationKind, type DistillationLossOptions } from './distillationLoss.js';
export { topKLogits, type TopKLogits } from './topK.js';
export {
  featureLoss,
  attentionTransferLoss,
  FEATURE_LOSS_KINDS,
  type FeatureLossKind,
  type FeatureLossOptions,
} from './featureLosses.js';
