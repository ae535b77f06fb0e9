/**
 * The demo page: reads the controls (or URL parameters), starts the chosen
 * backend, runs the experiment, and shows curves, table and soft
 * predictions. For automated runs (test/browser), `?auto=1` starts a run on
 * load, and the page reports through `window.__kdResult`,
 * `window.__kdErrors` and `<body data-status>` (`running`, `done`,
 * `unavailable` when the backend does not start here, `error`).
 */
import * as tf from '@tensorflow/tfjs-core';
// Registers tfjs's 'downloads://' router. tfjs-core imports this module only for a name the page never uses, so
// Vite 8's bundler drops it, router included, and model.save('downloads://...') then finds no handler.
import '@tensorflow/tfjs-core/dist/io/browser_files.js';
import * as tfl from '@tensorflow/tfjs-layers';
import { KdError } from 'kd-ts';
import { withQuantization } from 'kd-ts/io';
import { DEMO_BACKENDS, hasWebGpu, startBackend, type DemoBackend } from './backends.js';
import { CurveChart } from './curves.js';
import { loadDigits } from './data.js';
import { runExperiment, type RunResult, type RunSettings } from './experiment.js';
import { checkpointStore, finishRun, newestCheckpoint, notePoint, pendingRun, runKey, type PendingRun } from './resume.js';
import { renderSoftPredictions, renderTable } from './view.js';

/** What an automated run reads back from the page. */
export interface DemoReport extends Partial<RunResult> {
  /** The backend asked for. */
  requested: DemoBackend;
  /** The backend tfjs ran on (absent when it did not start). */
  backend?: string;
  /** Kernels kd-ts added to the backend (wasm). */
  additions?: string[];
  /** Why the backend did not start. */
  unavailable?: string;
  /** Tensors left after the run beyond the kept student's weights: 0 unless something leaked. */
  leakedTensors?: number;
  /** The browser, for the record. */
  userAgent?: string;
  /** Result of the IndexedDB round trip, once the save button was used. */
  saved?: { url: string; bytes: number; samePredictions: boolean };
  /** The checkpoint the distillation resumed from, after a reload interrupted the previous run. */
  resumedFrom?: string;
}

declare global {
  interface Window {
    __kdResult?: DemoReport;
    __kdErrors: string[];
  }
}

const STUDENT_URL = 'indexeddb://kd-ts-demo-student';
const base = document.baseURI;
const errors: string[] = [];
window.__kdErrors = errors;
addEventListener('error', (event) => errors.push(`error: ${event.message}`));
addEventListener('unhandledrejection', (event) => errors.push(`unhandled rejection: ${String(event.reason)}`));

const element = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const controls = {
  backend: element<HTMLSelectElement>('backend'),
  temperature: element<HTMLInputElement>('temperature'),
  alpha: element<HTMLInputElement>('alpha'),
  epochs: element<HTMLInputElement>('epochs'),
  teacher: element<HTMLSelectElement>('teacher'),
  teacherEpochs: element<HTMLInputElement>('teacher-epochs'),
  seed: element<HTMLInputElement>('seed'),
};
const runButton = element<HTMLButtonElement>('run');
const saveButton = element<HTMLButtonElement>('save-indexeddb');
const downloadButton = element<HTMLButtonElement>('save-download');
const downloadUint8Button = element<HTMLButtonElement>('save-download-uint8');
const statusLine = element<HTMLElement>('status');
const chart = new CurveChart(element<HTMLCanvasElement>('curves'));
const dataReady = loadDigits(base);
let student: tfl.LayersModel | undefined;

setUp();

function setUp(): void {
  for (const name of DEMO_BACKENDS) {
    const option = new Option(name, name);
    if (name === 'webgpu' && !hasWebGpu()) {
      option.disabled = true;
      option.text = 'webgpu (not in this browser)';
    }
    controls.backend.add(option);
  }
  controls.backend.value = 'wasm';
  // URL parameters override the defaults in the HTML, e.g. ?backend=cpu&epochs=2&auto=1.
  const params = new URLSearchParams(location.search);
  for (const [key, control] of Object.entries(controls)) {
    const name = key === 'teacherEpochs' ? 'teacher-epochs' : key;
    const value = params.get(name) ?? params.get(key);
    if (value !== null) control.value = value;
  }
  showPendingRun(params);
  controls.teacherEpochs.disabled = controls.teacher.value !== 'train';
  controls.teacher.addEventListener('change', () => (controls.teacherEpochs.disabled = controls.teacher.value !== 'train'));
  runButton.addEventListener('click', () => void run());
  saveButton.addEventListener('click', () => void saveToIndexedDb());
  downloadButton.addEventListener('click', () => void student?.save('downloads://kd-ts-student'));
  // The same files with 1 byte per weight (tfjs's quantized format; stock tf.loadLayersModel reads them).
  downloadUint8Button.addEventListener('click', () => void student?.save(withQuantization('downloads://kd-ts-student-uint8', { dtype: 'uint8' })));
  void dataReady.then(
    (data) => setStatus('idle', `${data.train.size} training and ${data.test.size} test digits loaded. Pick settings and run.`),
    (error: unknown) => fail(error),
  );
  if (params.get('auto') === '1') void run();
}

async function run(): Promise<void> {
  const requested = controls.backend.value as DemoBackend;
  const settings = readSettings();
  runButton.disabled = saveButton.disabled = downloadButton.disabled = downloadUint8Button.disabled = true;
  window.__kdResult = undefined;
  setStatus('running', `starting the ${requested} backend…`);
  try {
    const choice = await startBackend(requested, base);
    element('backend-info').textContent =
      `backend: ${tf.getBackend()}` + (choice.additions.length > 0 ? `; kd-ts added ${choice.additions.join(', ')}` : '');
    const data = await dataReady;
    student?.dispose();
    student = undefined;
    const tensorsBefore = tf.memory().numTensors;
    chart.reset(settings.epochs);
    // Checkpoints in IndexedDB: a reload during the distillation resumes it (resume.ts).
    const key = runKey(settings, requested);
    const pending = pendingRun();
    if (pending !== undefined && pending.key !== key) await finishRun(checkpointStore(pending.key)); // another run replaces it
    const store = checkpointStore(key);
    const note: PendingRun = { key, settings, backend: requested, points: pending?.key === key ? [...pending.points] : [] };
    const resumedFrom = pending?.key === key ? await newestCheckpoint(store) : undefined;
    resumeInfo(resumedFrom === undefined ? '' : `Resuming the interrupted run from its checkpoint ${resumedFrom} in IndexedDB.`);
    notePoint(note);
    const outcome = await runExperiment(
      settings,
      data,
      base,
      {
        status: (text) => setStatus('running', text),
        point: (series, epoch, accuracy) => {
          chart.add(series, epoch, accuracy);
          if (series === 'distilled') {
            note.points[epoch] = accuracy;
            notePoint(note);
          }
        },
      },
      store === undefined ? undefined : { store, earlier: note.points.slice() },
    );
    await finishRun(store);
    if (resumedFrom !== undefined) resumeInfo(`Resumed from checkpoint ${resumedFrom} after a reload.`);
    student = outcome.student;
    const leakedTensors = tf.memory().numTensors - tensorsBefore - student.weights.length;
    renderTable(element<HTMLTableSectionElement>('results'), outcome.result.rows);
    renderSoftPredictions(element('soft'), outcome.result.soft, data.test.pixels, settings.temperature);
    window.__kdResult = {
      requested,
      backend: tf.getBackend(),
      additions: choice.additions,
      leakedTensors,
      userAgent: navigator.userAgent,
      ...(resumedFrom === undefined ? {} : { resumedFrom }),
      ...outcome.result,
    };
    saveButton.disabled = downloadButton.disabled = downloadUint8Button.disabled = false;
    setStatus('done', `done in ${outcome.result.seconds.toFixed(1)} s on ${tf.getBackend()}.`);
  } catch (error) {
    if (error instanceof KdError && error.code === 'BACKEND_UNAVAILABLE') {
      window.__kdResult = { requested, unavailable: error.message };
      setStatus('unavailable', `${requested} does not start in this browser: ${error.message}`);
    } else {
      fail(error);
    }
  } finally {
    runButton.disabled = false;
  }
}

/** Saves the student in the browser's IndexedDB, loads it back, and checks it predicts the same. */
async function saveToIndexedDb(): Promise<void> {
  if (student === undefined) return;
  try {
    const saved = await student.save(STUDENT_URL);
    const loaded = await tfl.loadLayersModel(STUDENT_URL);
    const probe = tf.randomUniform([16, 784]);
    const same = tf.tidy(() => tf.all(tf.equal(tf.argMax(student!.predict(probe) as tf.Tensor, -1), tf.argMax(loaded.predict(probe) as tf.Tensor, -1))));
    const samePredictions = (await same.data())[0] === 1;
    tf.dispose([probe, same]);
    loaded.dispose();
    const bytes = saved.modelArtifactsInfo.weightDataBytes ?? 0;
    if (window.__kdResult !== undefined) window.__kdResult.saved = { url: STUDENT_URL, bytes, samePredictions };
    element('save-info').textContent = `saved to ${STUDENT_URL} (${bytes.toLocaleString('en-US')} bytes of weights); reloaded: ${samePredictions ? 'same predictions' : 'DIFFERENT predictions'}`;
    document.body.dataset.saved = samePredictions ? 'yes' : 'mismatch';
  } catch (error) {
    fail(error);
  }
}

/**
 * After a reload that interrupted a run: its settings in the controls (where
 * the URL does not set them) and a notice; Run resumes it.
 */
function showPendingRun(params: URLSearchParams): void {
  const pending = pendingRun();
  if (pending === undefined) return;
  const fromUrl = (name: string) => params.has(name) || params.has(name.replace(/-(.)/g, (_, c: string) => c.toUpperCase()));
  const values: Record<string, string> = {
    backend: pending.backend,
    temperature: String(pending.settings.temperature),
    alpha: String(pending.settings.alpha),
    epochs: String(pending.settings.epochs),
    teacher: pending.settings.teacher,
    'teacher-epochs': String(pending.settings.teacherEpochs),
    seed: String(pending.settings.seed),
  };
  for (const [key, control] of Object.entries(controls)) {
    const name = key === 'teacherEpochs' ? 'teacher-epochs' : key;
    if (!fromUrl(name) && values[name] !== undefined) control.value = values[name];
  }
  const done = pending.points.length - 1;
  resumeInfo(
    `A run was interrupted${done > 0 ? ` after ${done} of ${pending.settings.epochs} distillation epochs` : ''}: Run resumes it from its last checkpoint in IndexedDB (other settings start a new run).`,
  );
}

function resumeInfo(text: string): void {
  const info = element('resume-info');
  info.textContent = text;
  info.hidden = text === '';
}

function readSettings(): RunSettings {
  return {
    temperature: Number(controls.temperature.value),
    alpha: Number(controls.alpha.value),
    epochs: Number(controls.epochs.value),
    teacher: controls.teacher.value === 'train' ? 'train' : 'pretrained',
    teacherEpochs: Number(controls.teacherEpochs.value),
    seed: Number(controls.seed.value),
  };
}

function setStatus(status: string, text: string): void {
  document.body.dataset.status = status;
  statusLine.textContent = text;
}

/** Shows an error on the page, records it for tests, and logs it (tests fail on logged errors). */
function fail(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  errors.push(message);
  setStatus('error', `error: ${message}`);
  console.error(error);
}
