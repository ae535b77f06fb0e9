/**
 * Command-line flags of the SST-2 example, with every default in one place.
 *
 * @packageDocumentation
 */
import { parseArgs } from 'node:util';

/** Every setting of a run. Flags override them; `--full` and `--quick` change several. */
export const DEFAULTS = {
  /** `--data`: the GLUE SST-2 folder (or env `KD_SST2_DIR`); no default, users download GLUE. */
  data: '',
  /** `--seeds`: one set of students per seed (the teacher and the transfer set are shared). */
  seeds: [0],
  /**
   * `--epochs`: every student (labels, distilled) gets the same budget. The anchor: 3 (`--full`). One by
   * default, so that a run fits the 30-minute budget on 2 cores (see README.md, "Time").
   */
  epochs: 1,
  /** `--aug-passes`: augmentation passes over the training rows (Tang et al.'s n_iter). The anchor: 2. */
  augPasses: 2,
  /** `--aug-seed`: seeds the augmentation, so one transfer set (and one Python teacher file) serves every seed. */
  augSeed: 0,
  pMask: 0.1,
  /** `--p-pos`: POS-guided swaps (Tang et al.: 0.1; the PyTorch anchor used none). */
  pPos: 0.1,
  pNgram: 0.25,
  /** `--teacher-members`, `--teacher-epochs`: the tfjs CNN teacher of route (b). The anchor: 3 members, 4 epochs. */
  teacherMembers: 1,
  teacherEpochs: 2,
  batchSize: 50,
  /** `--lr`: Adam, for every model. */
  learningRate: 1e-3,
  /** `--dropout`: after the student's ReLU layer (buildBiLstmStudent's default, 0). */
  dropout: 0,
  /** Tokens kept per sentence (the anchor's cut). */
  maxLength: 50,
  /** `--train-rows`: the first N training rows only (quick checks). */
  trainRows: undefined as number | undefined,
  /** `--teacher-logits`: route (a), a teacher-output file (.npy + .ids.json, .jsonl, .arrow). */
  teacherLogits: undefined as string | undefined,
  /** `--export-transfer`: write the transfer set as JSONL `{id, text}` and stop. */
  exportTransfer: undefined as string | undefined,
  /** `--out`: results as JSON. */
  out: undefined as string | undefined,
  /** `--checkpoint`: a folder for the distilled students' checkpoints; a killed run started again with the same flags resumes. */
  checkpoint: undefined as string | undefined,
  /** `--backend`: wasm (default, with kd-ts's training kernels) or cpu. */
  backend: 'wasm' as 'wasm' | 'cpu',
};

export type Settings = typeof DEFAULTS;

/** A bad flag: printed with {@link USAGE}. */
export class UsageError extends Error {}

export const USAGE = `usage: npx tsx examples/sst2/main.ts --data <GLUE SST-2 folder> [options]
  --teacher-logits <file>  route (a): teacher outputs from teacher/train_teacher.py (.npy + .ids.json, .jsonl)
  --export-transfer <file> write the transfer set as JSONL {"id", "text"} for the Python teacher, then stop
  --seeds 0,1,2            student seeds (default 0)      --full   seeds 0,1,2, 3 epochs, 2 passes, 3 teacher CNNs × 4 epochs
  --epochs 1  --aug-passes 2  --aug-seed 0  --p-mask 0.1  --p-pos 0.1  --p-ngram 0.25
  --teacher-members 1  --teacher-epochs 2  --batch-size 50  --lr 0.001  --dropout 0  --max-length 50
  --train-rows N           the first N training rows only  --quick  2,000 rows, 1 epoch (a smoke run)
  --out <file.json>        results as JSON                  --backend wasm|cpu
  --checkpoint <dir>       checkpoint the distillations there; run again with the same flags to resume after a kill`;

/**
 * Reads `process.argv`.
 *
 * @param argv - Arguments (default: the process's).
 * @returns The settings.
 * @throws {@link UsageError} for unknown flags, bad values, or no data folder.
 */
export function readFlags(argv: string[] = process.argv.slice(2)): Settings {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        data: { type: 'string' },
        seeds: { type: 'string' },
        epochs: { type: 'string' },
        'aug-passes': { type: 'string' },
        'aug-seed': { type: 'string' },
        'p-mask': { type: 'string' },
        'p-pos': { type: 'string' },
        'p-ngram': { type: 'string' },
        'teacher-members': { type: 'string' },
        'teacher-epochs': { type: 'string' },
        'batch-size': { type: 'string' },
        lr: { type: 'string' },
        dropout: { type: 'string' },
        'max-length': { type: 'string' },
        'train-rows': { type: 'string' },
        'teacher-logits': { type: 'string' },
        'export-transfer': { type: 'string' },
        out: { type: 'string' },
        checkpoint: { type: 'string' },
        backend: { type: 'string' },
        full: { type: 'boolean' },
        quick: { type: 'boolean' },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const settings: Settings = { ...DEFAULTS };
  if (values.full === true) Object.assign(settings, { seeds: [0, 1, 2], epochs: 3, augPasses: 2, teacherMembers: 3, teacherEpochs: 4 });
  if (values.quick === true) Object.assign(settings, { trainRows: 2000, epochs: 1, augPasses: 1, teacherEpochs: 1 });

  const number = (name: string, fallback: number, check: (v: number) => boolean, what: string): number => {
    const value = values[name];
    if (typeof value !== 'string') return fallback;
    const parsed = Number(value);
    if (!check(parsed)) throw new UsageError(`--${name} must be ${what}, got ${value}`);
    return parsed;
  };
  const positiveInteger = (v: number) => Number.isInteger(v) && v > 0;
  const probability = (v: number) => v >= 0 && v <= 1;
  settings.epochs = number('epochs', settings.epochs, positiveInteger, 'a positive integer');
  settings.augPasses = number('aug-passes', settings.augPasses, (v) => Number.isInteger(v) && v >= 0, 'an integer ≥ 0');
  settings.augSeed = number('aug-seed', settings.augSeed, Number.isInteger, 'an integer');
  settings.pMask = number('p-mask', settings.pMask, probability, 'in [0, 1]');
  settings.pPos = number('p-pos', settings.pPos, probability, 'in [0, 1]');
  settings.pNgram = number('p-ngram', settings.pNgram, probability, 'in [0, 1]');
  settings.teacherMembers = number('teacher-members', settings.teacherMembers, positiveInteger, 'a positive integer');
  settings.teacherEpochs = number('teacher-epochs', settings.teacherEpochs, positiveInteger, 'a positive integer');
  settings.batchSize = number('batch-size', settings.batchSize, positiveInteger, 'a positive integer');
  settings.learningRate = number('lr', settings.learningRate, (v) => Number.isFinite(v) && v > 0, 'a number > 0');
  settings.dropout = number('dropout', settings.dropout, (v) => v >= 0 && v < 1, 'in [0, 1)');
  settings.maxLength = number('max-length', settings.maxLength, positiveInteger, 'a positive integer');
  if (typeof values['train-rows'] === 'string') {
    settings.trainRows = number('train-rows', 0, positiveInteger, 'a positive integer');
  }
  if (typeof values.seeds === 'string') {
    const seeds = values.seeds.split(',').map(Number);
    if (seeds.some((s) => !Number.isInteger(s))) throw new UsageError(`--seeds must be integers separated by commas, got ${values.seeds}`);
    settings.seeds = seeds;
  }
  if (values.backend !== undefined) {
    if (values.backend !== 'wasm' && values.backend !== 'cpu') throw new UsageError(`--backend must be wasm or cpu, got ${String(values.backend)}`);
    settings.backend = values.backend;
  }
  for (const [flag, key] of [['teacher-logits', 'teacherLogits'], ['export-transfer', 'exportTransfer'], ['out', 'out'], ['checkpoint', 'checkpoint']] as const) {
    if (typeof values[flag] === 'string') settings[key] = values[flag];
  }
  const data = typeof values.data === 'string' ? values.data : process.env.KD_SST2_DIR;
  if (data === undefined || data === '') {
    throw new UsageError('no SST-2 data: pass --data <folder holding GLUE SST-2 train.tsv and dev.tsv> (or set KD_SST2_DIR)');
  }
  settings.data = data;
  return settings;
}
