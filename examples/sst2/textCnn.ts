/**
 * The teacher of route (b), in tfjs: Kim's (2014) word-level CNN, as in the
 * PyTorch anchor and `teacher/train_teacher.py`: random 300-d embeddings,
 * filters of widths 3, 4 and 5 (100 each), ReLU, max over time, dropout 0.5,
 * a linear layer to the logits.
 *
 * Written with plain variables rather than tfjs-layers, for one reason: the
 * max over time must skip windows that run into padding, so a sentence scores
 * the same in any batch (tfjs's GlobalMaxPooling1D ignores masks). A window
 * counts when it starts and ends inside the sentence; a sentence shorter than
 * a filter (padded up to the widest filter) keeps its first window.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';

/** Options of {@link TextCnn}. Defaults: Kim (2014), CNN-rand. */
export interface TextCnnOptions {
  vocabSize: number;
  numClasses?: number;
  embeddingDim?: number;
  widths?: number[];
  filters?: number;
  dropout?: number;
}

/** A word-level CNN classifier over int32 token ids `[batch, time]` (PAD = 0 on the right, time ≥ the widest filter). */
export class TextCnn {
  readonly widths: number[];
  readonly dropout: number;
  private readonly embedding: tf.Variable;
  private readonly kernels: tf.Variable[];
  private readonly biases: tf.Variable[];
  private readonly denseKernel: tf.Variable;
  private readonly denseBias: tf.Variable;

  /** Weights are drawn from tfjs's generators: build inside `withSeed` to repeat them. */
  constructor(options: TextCnnOptions) {
    const dim = options.embeddingDim ?? 300;
    const filters = options.filters ?? 100;
    const classes = options.numClasses ?? 2;
    this.widths = options.widths ?? [3, 4, 5];
    this.dropout = options.dropout ?? 0.5;
    this.embedding = variableOf(tf.randomUniform([options.vocabSize, dim], -0.25, 0.25));
    this.kernels = this.widths.map((w) => variableOf(glorotUniform([w, dim, filters], w * dim, w * filters)));
    this.biases = this.widths.map(() => variableOf(tf.zeros([filters])));
    const pooled = filters * this.widths.length;
    this.denseKernel = variableOf(glorotUniform([pooled, classes], pooled, classes));
    this.denseBias = variableOf(tf.zeros([classes]));
  }

  /** The trainable variables (for an optimizer's var list). */
  get variables(): tf.Variable[] {
    return [this.embedding, ...this.kernels, ...this.biases, this.denseKernel, this.denseBias];
  }

  /** Number of parameters. */
  countParams(): number {
    return this.variables.reduce((n, v) => n + v.size, 0);
  }

  /** The widest filter: batches must be at least this wide. */
  get minWidth(): number {
    return Math.max(...this.widths);
  }

  /**
   * Logits `[batch, classes]`.
   *
   * @param ids - int32 `[batch, time]`, time ≥ {@link TextCnn.minWidth}.
   * @param training - Dropout on (training) or off.
   * @returns The logits (the caller owns them).
   */
  apply(ids: tf.Tensor, training = false): tf.Tensor2D {
    return tf.tidy(() => {
      const [batch, time] = ids.shape as [number, number];
      const lengths = tf.sum(tf.cast(tf.notEqual(ids, 0), 'int32'), 1); // [batch]
      const x = tf.gather(this.embedding, ids); // [batch, time, dim]
      const pooled = this.widths.map((w, k) => {
        const h = tf.relu(tf.add(tf.conv1d(x as tf.Tensor3D, this.kernels[k] as tf.Tensor3D, 1, 'valid'), this.biases[k]!));
        const windows = time - w + 1;
        const starts = tf.reshape(tf.range(0, windows, 1, 'int32'), [1, windows]);
        const validCount = tf.reshape(tf.maximum(tf.sub(lengths, w - 1), 1), [batch, 1]);
        const invalid = tf.cast(tf.greaterEqual(starts, validCount), 'float32'); // [batch, windows]
        return tf.max(tf.sub(h, tf.mul(tf.expandDims(invalid, 2), 1e9)), 1); // [batch, filters]
      });
      let features = tf.concat(pooled, 1);
      if (training && this.dropout > 0) features = tf.dropout(features, this.dropout);
      return tf.add(tf.matMul(features, this.denseKernel), this.denseBias) as tf.Tensor2D;
    });
  }

  /** Frees the variables. */
  dispose(): void {
    tf.dispose(this.variables);
  }
}

/** A variable holding `initial`'s values; `initial` itself is disposed (tf.variable keeps it alive otherwise). */
function variableOf(initial: tf.Tensor): tf.Variable {
  const variable = tf.variable(initial);
  initial.dispose();
  return variable;
}

function glorotUniform(shape: number[], fanIn: number, fanOut: number): tf.Tensor {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return tf.randomUniform(shape, -limit, limit);
}
