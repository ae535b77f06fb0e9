import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { KdBackendError, KdConfigError } from '../../errors.js';
import type { ParallelRun, ParallelRunSpec, ParallelTrainer } from '../../distill/parallel.js';
import { WorkerRun } from './workerRun.js';
import { spawnWorker } from './spawnWorker.js';
import { buffersOf, errorData, workerError, type FromWorker, type ToWorker } from './protocol.js';

/** Options of {@link workerPool}. */
export interface WorkerPoolOptions {
  /** Worker threads, each holding a replica of the student (a batch is split across them). */
  workers: number;
  /**
   * A module every worker imports before anything else, to register custom
   * layers, kernels or optimizers: a path (relative to the working
   * directory), a `file:` URL or a package name.
   */
  setup?: string;
  /**
   * Run a LayersModel teacher inside the workers, on each worker's shard
   * (default true). With false, or with any other kind of teacher, the
   * teacher runs once per batch in the main thread and its outputs are sent
   * with each shard.
   */
  replicateTeacher?: boolean;
}

/**
 * A pool of worker threads that trains a Distiller's student data-parallel:
 * pass it as `fit(x, y, { parallel: pool })` or `fitDataset(ds, { parallel: pool })`.
 * Each worker holds a replica of the student; each batch is split into one
 * contiguous shard per worker; the shard gradients are averaged through
 * shared memory (weighted by shard size: the full-batch mean) and every
 * replica takes the same optimizer step. For tfjs's Adam, Momentum and SGD
 * the update itself is split too: each worker updates its share of the
 * weights with WebAssembly SIMD kernels and the others read it (see
 * docs/parallel.md); other optimizers run whole in every replica. The epoch loop, callbacks, logs,
 * validation and `History` stay in the main thread; the replicas' weights are
 * copied to the student at the end of every epoch and of the run.
 *
 * The workers start on the first fit and stay for the next ones; `close()`
 * ends them. Between fits they do not keep the process alive.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import '@tensorflow/tfjs-backend-cpu';
 * import { Distiller } from 'kd-ts';
 * import { workerPool } from 'kd-ts/node';
 *
 * const teacher = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [20] })] });
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [20] })] });
 * const distiller = new Distiller({ teacher, student });
 * distiller.compile({ optimizer: 'adam', temperature: 4 });
 *
 * const pool = workerPool({ workers: 2 });
 * try {
 *   await distiller.fit(tf.randomNormal([1024, 20]), undefined, { epochs: 2, batchSize: 256, parallel: pool });
 * } finally {
 *   await pool.close();
 * }
 * ```
 */
export function workerPool(options: WorkerPoolOptions): WorkerPool {
  return new WorkerPool(options);
}

/**
 * The pool {@link workerPool} returns: a `ParallelTrainer` with `close()`.
 *
 * @example
 * ```ts
 * import { workerPool, type WorkerPool } from 'kd-ts/node';
 *
 * const pool: WorkerPool = workerPool({ workers: 2 });
 * console.log(pool.workers); // 2
 * await pool.close();
 * ```
 */
export class WorkerPool implements ParallelTrainer {
  /** Number of worker threads. */
  readonly workers: number;
  private readonly setup?: string;
  private readonly replicateTeacher: boolean;
  private threads?: Thread[];
  private current?: WorkerRun;
  private closed = false;

  /**
   * @param options - See {@link WorkerPoolOptions}.
   * @throws {@link KdConfigError} `INVALID_OPTION` for a worker count that is not a positive integer.
   */
  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options?.workers) || options.workers < 1) {
      throw new KdConfigError(
        'INVALID_OPTION',
        `workers must be a positive integer, got ${String(options?.workers)}: e.g. workerPool({ workers: os.availableParallelism() })`,
      );
    }
    this.workers = options.workers;
    if (options.setup !== undefined) this.setup = moduleSpecifier(options.setup);
    this.replicateTeacher = options.replicateTeacher ?? true;
  }

  /**
   * Starts a run: used by `Distiller.fit`, not called directly.
   *
   * @param spec - The student, teacher, optimizer and step settings to replicate.
   * @returns The run.
   * @throws {@link KdConfigError} `INVALID_OPTION` when the pool is closed or already training.
   * @throws {@link KdBackendError} `WORKER_CRASHED` when a worker cannot start.
   */
  async begin(spec: ParallelRunSpec): Promise<ParallelRun> {
    if (this.closed) throw new KdConfigError('INVALID_OPTION', 'this worker pool is closed: create a new one with workerPool({ workers })');
    if (this.current !== undefined) {
      throw new KdConfigError('INVALID_OPTION', 'this worker pool is already training a student: one fit at a time per pool');
    }
    const threads = await this.ensureThreads();
    const run = new WorkerRun(threads, spec, this.replicateTeacher && spec.teacherModel !== undefined, () => {
      if (this.current === run) this.current = undefined;
    });
    this.current = run;
    try {
      await run.start();
    } catch (error) {
      await run.end({ failed: true }).catch(() => undefined);
      throw error;
    }
    return run;
  }

  /**
   * Tensors alive in each worker (`tf.memory().numTensors`): 0 between runs.
   * A diagnostic for leak tests.
   *
   * @returns One count per worker; empty before the first run.
   */
  async workerTensors(): Promise<number[]> {
    if (this.threads === undefined) return [];
    const replies = await Promise.all(this.threads.map((t) => t.request({ type: 'memory' })));
    return replies.map((r) => (r.type === 'memory' ? r.numTensors : -1));
  }

  /**
   * Ends the worker threads. The pool cannot train afterwards. Safe to call twice.
   *
   * @returns When every thread has exited.
   */
  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads;
    this.threads = undefined;
    if (threads !== undefined) await Promise.all(threads.map((t) => t.terminate()));
  }

  private async ensureThreads(): Promise<Thread[]> {
    if (this.threads !== undefined && this.threads.every((t) => t.failure === undefined)) return this.threads;
    if (this.threads !== undefined) await Promise.all(this.threads.map((t) => t.terminate()));
    const threads = Array.from({ length: this.workers }, (_, index) => new Thread(index, this.workers, this.setup, (crash) => this.crashed(crash)));
    this.threads = threads;
    try {
      await Promise.all(threads.map((t) => t.started));
    } catch (error) {
      this.threads = undefined;
      await Promise.all(threads.map((t) => t.terminate()));
      throw error;
    }
    return threads;
  }

  /** A worker died: stop the run (waking the others at the barrier) and end every thread. */
  private crashed(crash: KdBackendError): void {
    this.current?.abort(crash);
    const threads = this.threads;
    this.threads = undefined;
    if (threads !== undefined) for (const t of threads) void t.terminate();
  }
}

/** One worker thread and its queue of requests (one reply per request, in order). */
export class Thread {
  readonly started: Promise<void>;
  failure?: KdBackendError;
  private readonly worker: Worker;
  private readonly pending: Array<{ resolve: (m: FromWorker) => void; reject: (e: unknown) => void }> = [];
  private terminating = false;

  constructor(
    readonly index: number,
    readonly workers: number,
    setup: string | undefined,
    onCrash: (crash: KdBackendError) => void,
  ) {
    this.worker = spawnWorker({ index, workers, ...(setup === undefined ? {} : { setup }) });
    this.worker.unref();
    let spawned: () => void = () => {};
    let failed: (e: unknown) => void = () => {};
    this.started = new Promise<void>((resolve, reject) => {
      spawned = resolve;
      failed = reject;
    });
    this.worker.on('message', (message: FromWorker) => {
      if (message.type === 'spawned') return spawned();
      const request = this.pending.shift();
      if (request === undefined && message.type === 'error') return failed(this.startError(message.error.message));
      if (message.type === 'error') request?.reject(workerError(message.error, index, workers));
      else request?.resolve(message);
      if (this.pending.length === 0) this.worker.unref();
    });
    const die = (reason: string) => {
      if (this.terminating || this.failure !== undefined) return;
      this.failure = new KdBackendError(
        'WORKER_CRASHED',
        `worker ${index + 1} of ${workers} ${reason}: the fit was stopped and the pool's workers ended; ` +
          "the student keeps the weights of the last epoch's end. Check the worker's memory and the setup module; " +
          'the next fit on this pool starts new workers',
      );
      failed(this.failure);
      for (const request of this.pending.splice(0)) request.reject(this.failure);
      onCrash(this.failure);
    };
    // `unknown`: @types/node versions type this listener's argument differently (Error or unknown).
    this.worker.on('error', (error: unknown) =>
      die(`crashed (${error instanceof Error ? `${error.name}: ${error.message}` : String(error)})`),
    );
    this.worker.on('exit', (code) => die(`exited with code ${code}`));
  }

  /** Sends one message; resolves with the worker's reply. */
  request(message: ToWorker): Promise<FromWorker> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.worker.ref();
      this.worker.postMessage(message, buffersOf(message));
    });
  }

  async terminate(): Promise<void> {
    this.terminating = true;
    // Later requests fail at once instead of waiting for a thread that is gone.
    this.failure ??= new KdBackendError(
      'WORKER_CRASHED',
      `worker ${this.index + 1} of ${this.workers} was ended (the pool was closed, or another worker crashed)`,
    );
    for (const request of this.pending.splice(0)) request.reject(this.failure);
    await this.worker.terminate();
  }

  private startError(message: string): KdConfigError {
    return new KdConfigError(
      'INVALID_OPTION',
      `worker ${this.index + 1} could not start: ${message}: check workerPool({ setup }) (a path, file: URL or package name that imports without error)`,
      { cause: errorData(message) },
    );
  }
}

/** A setup module as something `import()` takes from inside a worker. */
function moduleSpecifier(setup: string): string {
  if (setup.startsWith('file:') || setup.startsWith('node:')) return setup;
  if (setup.startsWith('.') || isAbsolute(setup)) return pathToFileURL(resolve(setup)).href;
  return setup;
}
