/**
 * Loads the tiny BERT of this folder (`tiny-bert-sst2/`, made by
 * train_tiny_bert.py) with transformers.js, from the local folder only: no
 * model is ever downloaded.
 *
 * transformers.js is this example's own dependency (examples/onnx-teacher/package.json,
 * `npm ci --prefix examples/onnx-teacher`), not kd-ts's.
 *
 * @packageDocumentation
 */
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';

/** The model's name inside this folder (transformers.js's `env.localModelPath`). */
export const TINY_BERT = 'tiny-bert-sst2';

/**
 * The model and its tokenizer, as `transformersTeacher` takes them.
 *
 * @param options - `threads`: onnxruntime's intra-op threads (default 1, like tfjs's wasm backend in Node).
 * @returns The sequence-classification model and its tokenizer.
 */
export async function loadTinyBert(options: { threads?: number } = {}) {
  env.allowRemoteModels = false;
  env.localModelPath = `${import.meta.dirname}/`;
  const model = await AutoModelForSequenceClassification.from_pretrained(TINY_BERT, {
    dtype: 'fp32',
    session_options: { intraOpNumThreads: options.threads ?? 1, interOpNumThreads: 1 },
  });
  const tokenizer = await AutoTokenizer.from_pretrained(TINY_BERT);
  return { model, tokenizer };
}
