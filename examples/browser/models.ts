/**
 * The demo's networks: plain tfjs-layers MLPs that output logits (the
 * Distiller needs the teacher's and the student's logits, not softmax
 * probabilities). Shared by the build step (which trains the teacher in
 * Node) and the page, so both build the same architecture.
 */
export { buildMlp, type MlpDropout } from '../shared/mlp.js';

/** 28 × 28 grey levels. */
export const PIXELS = 784;
/** Digits 0 to 9. */
export const CLASSES = 10;

/** `784-256-256-10`, the way the page names a network. */
export function architecture(hidden: number[]): string {
  return [PIXELS, ...hidden, CLASSES].join('-');
}
