import * as tfl from '@tensorflow/tfjs-layers';
import cliProgress from 'cli-progress';

/** Options of {@link progressBar}. */
export interface ProgressBarOptions {
  /** Stream to draw on (default `process.stdout`). */
  stream?: NodeJS.WriteStream;
  /** Log keys shown on the bar (default loss and agreement). */
  keys?: string[];
}

/**
 * A training callback that draws a progress bar per epoch in a terminal
 * (with `cli-progress`) and prints each epoch's logs when it ends. When the
 * stream is not a terminal (CI logs, pipes) it prints the epoch lines only.
 *
 * @param options - See {@link ProgressBarOptions}.
 * @returns A tfjs callback for `Distiller.fit` / `fitDataset` (or `model.fit`).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Distiller } from 'kd-ts';
 * import { progressBar } from 'kd-ts/node';
 *
 * const teacher = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4] })] });
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4] })] });
 * const distiller = new Distiller({ teacher, student });
 * distiller.compile({ optimizer: 'adam', temperature: 2 });
 * const x = tf.randomNormal([256, 4]);
 * await distiller.fit(x, undefined, { epochs: 5, callbacks: [progressBar()] });
 * ```
 */
export function progressBar(options: ProgressBarOptions = {}): tfl.Callback {
  return new ProgressBarCallback(options);
}

class ProgressBarCallback extends tfl.Callback {
  private bar?: cliProgress.SingleBar;
  private readonly stream: NodeJS.WriteStream;
  private readonly keys: string[];

  constructor(options: ProgressBarOptions) {
    super();
    this.stream = options.stream ?? process.stdout;
    this.keys = options.keys ?? ['loss', 'agreement'];
  }

  override async onEpochBegin(epoch: number): Promise<void> {
    const steps = this.params.steps;
    if (!this.stream.isTTY || typeof steps !== 'number') return;
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream,
        format: `Epoch ${epoch + 1}/${String(this.params.epochs)} [{bar}] {value}/{total} {metrics}`,
        hideCursor: true,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(steps, 0, { metrics: '' });
  }

  override async onBatchEnd(batch: number, logs?: tfl.Logs): Promise<void> {
    this.bar?.update(batch + 1, { metrics: this.format(logs, this.keys) });
  }

  override async onEpochEnd(epoch: number, logs?: tfl.Logs): Promise<void> {
    this.bar?.stop();
    this.bar = undefined;
    this.stream.write(`Epoch ${epoch + 1}/${String(this.params.epochs)} ${this.format(logs)}\n`);
  }

  private format(logs: tfl.Logs | undefined, keys?: string[]): string {
    return Object.entries(logs ?? {})
      .filter(([k]) => keys === undefined || keys.includes(k))
      .map(([k, v]) => `${k}=${v.toFixed(4)}`)
      .join(' ');
  }
}
