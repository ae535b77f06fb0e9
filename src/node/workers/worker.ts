/**
 * The worker thread of `workerPool`: holds a replica of the student (and of a
 * LayersModel teacher), runs kd-ts's own training step on its shard of each
 * batch, and averages gradients with the other workers through shared
 * memory. Started by the pool; not an entry users import.
 *
 * @packageDocumentation
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { pickTrainingBackend, type TrainingBackendName } from '../../backend/pickBackend.js';
import { withMathRandom } from '../../compat/mathRandom.js';
import { seededRandom } from '../../distill/seed.js';
import type { StepTeacherOutputs } from '../../distill/stepData.js';
import { createTrainStep, type TrainStep, type TrainStepOptions } from '../../distill/trainStep.js';
import { registerKdLayers } from '../../layers/register.js';
import { asTeacher, type Teacher } from '../../teachers/teacher.js';
import { AllReduceOptimizer, BarrierAborted, SharedExchange } from './allReduce.js';
import {
  buffersOf,
  errorData,
  toInputs,
  toTensor,
  type BeginMessage,
  type FromWorker,
  type ModelData,
  type StepMessage,
  type TensorData,
  type ToWorker,
} from './protocol.js';

/** What the pool passes when it starts a worker. */
export interface WorkerStartData {
  index: number;
  workers: number;
  /** A module URL or package name to import first (users' layers and kernels). */
  setup?: string;
}

interface Run {
  student: tfl.LayersModel;
  teacherModel?: tfl.LayersModel;
  teacher?: Teacher;
  optimizer: AllReduceOptimizer;
  exchange: SharedExchange;
  step: TrainStep;
  temperature: number;
  finished: () => void;
}

const port = parentPort!;
const start = workerData as WorkerStartData;
// A `import()` that bundlers leave alone, so the CJS build imports ESM setup modules too.
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;
let run: Run | undefined;
let queue: Promise<void> = Promise.resolve();

const send = (message: FromWorker) => port.postMessage(message, buffersOf(message));

async function main(): Promise<void> {
  if (start.setup !== undefined) await importModule(start.setup);
  registerKdLayers();
  port.on('message', (message: ToWorker) => {
    queue = queue.then(() => handle(message));
  });
  send({ type: 'spawned' });
}

async function handle(message: ToWorker): Promise<void> {
  try {
    switch (message.type) {
      case 'begin':
        await begin(message);
        send({ type: 'ready' });
        return;
      case 'step':
        send({ type: 'logs', logs: await step(message) });
        return;
      case 'weights':
        send({ type: 'weights', weights: requireRun().student.weights.map((w) => dataOf(w.read())) });
        return;
      case 'optimizer': {
        // Only a replicated update keeps the state here (a sharded one's is in the shared memory, read by the main thread).
        const state = (await requireRun().optimizer.inner?.getWeights()) ?? [];
        send({ type: 'optimizer', state: state.map((w) => dataOf(w.tensor)) });
        // Only the step count is a fresh tensor; the rest are the optimizer's own variables.
        state[0]?.tensor.dispose();
        return;
      }
      case 'end':
        end();
        send({ type: 'ended', numTensors: tf.memory().numTensors });
        return;
      case 'memory':
        send({ type: 'memory', numTensors: tf.memory().numTensors });
        return;
    }
  } catch (error) {
    send({
      type: 'error',
      error: errorData(error, {
        ...(error instanceof BarrierAborted ? { aborted: true } : {}),
        ...((error as { inTeacher?: boolean }).inTeacher === true ? { inTeacher: true } : {}),
      }),
    });
  }
}

async function begin(message: BeginMessage): Promise<void> {
  end();
  for (const [flag, value] of Object.entries(message.flags)) tf.env().set(flag, value);
  await useBackend(message.backend);
  // What a failed begin has made so far, disposed before the error goes back (the pool trains again after it).
  const made: Array<{ dispose(): void }> = [];
  let student: tfl.LayersModel, teacherModel: tfl.LayersModel | undefined, optimizer: AllReduceOptimizer, step: TrainStep, teacher: Teacher | undefined;
  let exchange: SharedExchange;
  try {
    student = await replicate(message.student);
    made.push(student);
    teacherModel = message.teacher === undefined ? undefined : await replicate(message.teacher);
    if (teacherModel !== undefined) made.push(teacherModel);
    const stepOptions = message.stepOptions as Omit<TrainStepOptions, 'student' | 'optimizer'> & { clipNorm?: number };
    // A replicated update applies the averaged gradient with the real optimizer, which keeps its own state;
    // a sharded one's state is in the shared memory, and it needs only the config (building the tfjs
    // optimizer anyway would cost a tensor per run for Momentum: tfjs 4.22's MomentumOptimizer.dispose
    // leaves its learning-rate scalar behind).
    let inner: tf.Optimizer | undefined;
    if (message.update.kind === 'replicated') {
      inner = makeOptimizer(message.optimizer.className, message.optimizer.config);
      made.push(inner);
      if (message.optimizer.state.length > 0) {
        const state = message.optimizer.state.map((s, i) => ({ name: `state_${i}`, tensor: toTensor(s) }));
        await inner.setWeights(state);
        tf.dispose(state.map((s) => s.tensor));
      }
    }
    const variables = student.trainableWeights.map((w) => w.read() as tf.Variable);
    const size = variables.reduce((n, v) => n + v.size, 0);
    if (size !== message.layout.size || message.layout.workers !== start.workers) {
      throw new Error(`the replica has ${size} trainable values but the pool laid out its shared memory for ${message.layout.size}`);
    }
    exchange = new SharedExchange(message.control, message.memory, message.layout, start.index);
    // clipNorm acts on the averaged gradient (in the exchange), not on this replica's share.
    const { clipNorm, ...rest } = stepOptions;
    optimizer = new AllReduceOptimizer(inner, message.optimizer.config as tf.serialization.ConfigDict, variables, exchange, { ...message.update }, clipNorm);
    step = createTrainStep({ ...rest, student, optimizer });
    teacher = teacherModel === undefined ? undefined : asTeacher(teacherModel, { outputs: stepOptions.teacherOutputs });
  } catch (error) {
    for (const m of made) m.dispose();
    throw error;
  }
  let finished = () => {};
  const done = new Promise<void>((resolve) => (finished = resolve));
  run = { student, teacherModel, teacher, optimizer, exchange, step, temperature: message.temperature, finished };
  // Dropout and other unseeded tfjs draws: a stream per replica, derived from the run's seed and the worker's index.
  if (message.seed !== undefined) void withMathRandom(seededRandom(`${message.seed}/worker-${start.index}`), () => done);
}

async function step(message: StepMessage): Promise<Record<string, number>> {
  const current = requireRun();
  if (message.rows === 0) {
    try {
      current.optimizer.applyNothing();
    } catch (error) {
      if (!(error instanceof BarrierAborted)) current.exchange.abort();
      throw error;
    }
    return {};
  }
  const inputs = toInputs(message.inputs!);
  const labels = message.labels === undefined ? undefined : toTensor(message.labels);
  const mask = message.mask === undefined ? undefined : toTensor(message.mask);
  let teacherLogits: StepTeacherOutputs | undefined;
  const owned: tf.Tensor[] = [...tensorsIn(inputs), ...(labels === undefined ? [] : [labels]), ...(mask === undefined ? [] : [mask])];
  try {
    if (message.teacherTopK !== undefined) {
      teacherLogits = { ids: toTensor(message.teacherTopK.ids), logits: toTensor(message.teacherTopK.logits) };
      owned.push(teacherLogits.ids, teacherLogits.logits);
    } else if (message.teacherLogits !== undefined) {
      teacherLogits = toTensor(message.teacherLogits);
      owned.push(teacherLogits);
    } else {
      const teacherInputs = message.teacherInputs === undefined ? inputs : toInputs(message.teacherInputs);
      if (teacherInputs !== inputs) owned.push(...tensorsIn(teacherInputs));
      try {
        teacherLogits = await current.teacher!.predict(teacherInputs, { temperature: current.temperature });
      } catch (error) {
        throw Object.assign(error instanceof Error ? error : new Error(String(error)), { inTeacher: true });
      }
      owned.push(teacherLogits);
    }
    current.optimizer.share = message.share;
    return await current.step({ inputs, teacherLogits, ...(labels === undefined ? {} : { labels }), ...(mask === undefined ? {} : { mask }) });
  } catch (error) {
    // The others would wait for this worker at the barrier forever.
    if (!(error instanceof BarrierAborted)) current.exchange.abort();
    throw error;
  } finally {
    tf.dispose(owned);
  }
}

function end(): void {
  if (run === undefined) return;
  run.optimizer.dispose();
  run.student.dispose();
  run.teacherModel?.dispose();
  run.finished();
  run = undefined;
}

function requireRun(): Run {
  if (run === undefined) throw new Error('no run: the pool sends begin before anything else');
  return run;
}

async function useBackend(name: string): Promise<void> {
  if (tf.getBackend() === name) return;
  const packages: Record<string, string> = { cpu: '@tensorflow/tfjs-backend-cpu', wasm: '@tensorflow/tfjs-backend-wasm' };
  const pkg = packages[name];
  if (pkg !== undefined && tf.findBackendFactory(name) == null) await importModule(pkg);
  await pickTrainingBackend({ prefer: [name as TrainingBackendName] });
}

async function replicate(model: ModelData): Promise<tfl.LayersModel> {
  // A layer class missing here fails modelFromJSON after the layers before it made their weights: dispose those.
  const before = new Set(Object.keys(tf.engine().registeredVariables));
  try {
    const replica = await tfl.models.modelFromJSON({ modelTopology: model.topology } as tf.io.ModelJSON);
    const weights = model.weights.map(toTensor);
    try {
      replica.setWeights(weights);
    } finally {
      tf.dispose(weights);
    }
    return replica;
  } catch (error) {
    for (const [name, variable] of Object.entries(tf.engine().registeredVariables)) if (!before.has(name)) variable.dispose();
    throw error;
  }
}

function makeOptimizer(className: string, config: object): tf.Optimizer {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (entry === undefined) {
    throw new Error(`optimizer class ${className} is not registered in the worker: register it in workerPool({ setup })`);
  }
  const [cls, fromConfig] = entry;
  return fromConfig(cls, config as tf.serialization.ConfigDict) as tf.Optimizer;
}

function dataOf(tensor: tf.Tensor): TensorData {
  return { shape: tensor.shape.slice(), dtype: tensor.dtype, data: (tensor.dataSync() as TensorData['data']).slice() };
}

function tensorsIn(inputs: tf.Tensor | tf.Tensor[] | tf.NamedTensorMap): tf.Tensor[] {
  return inputs instanceof tf.Tensor ? [inputs] : Array.isArray(inputs) ? inputs : Object.values(inputs);
}

main().catch((error) => {
  send({ type: 'error', error: errorData(error) });
});
