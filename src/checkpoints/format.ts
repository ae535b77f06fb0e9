import { KdConfigError, KdDataError } from '../errors.js';
import type { CheckpointRecord } from './store.js';

/** The `format` field of every kd-ts checkpoint manifest. */
export const CHECKPOINT_FORMAT = 'kd-ts-checkpoint';
/** The manifest version this kd-ts writes and reads. */
export const CHECKPOINT_VERSION = 1;

/** Element types a checkpoint blob holds. */
export type CheckpointDtype = 'float32' | 'int32';

/** One array in a checkpoint: its group (`student`, `optimizer`, `projections`, `order`), name, type, shape and values. */
export interface CheckpointArray {
  group: string;
  name: string;
  dtype: CheckpointDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Where one array lies in the blob (the manifest's `arrays`). */
export interface CheckpointArraySpec {
  group: string;
  name: string;
  dtype: CheckpointDtype;
  shape: number[];
  offset: number;
  byteLength: number;
}

/** The part of the manifest the format owns: layout, length and checksum of the blob. */
export interface CheckpointLayout {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  arrays: CheckpointArraySpec[];
  byteLength: number;
  /** CRC-32 of the blob, 8 hex digits. */
  crc32: string;
}

/**
 * Packs arrays into one blob and describes them: the record kd-ts hands a
 * {@link CheckpointStore}. `state` is any JSON-serializable object (numbers
 * may be non-finite: they are written as `{ "$number": "Infinity" }`).
 *
 * @param name - The record's name.
 * @param arrays - The arrays, packed in order, each 4-byte aligned.
 * @param state - What else the manifest holds.
 * @returns The record.
 * @internal
 */
export function encodeCheckpoint(name: string, arrays: readonly CheckpointArray[], state: Record<string, unknown>): CheckpointRecord {
  const specs: CheckpointArraySpec[] = [];
  let offset = 0;
  for (const a of arrays) {
    const byteLength = a.data.length * 4;
    specs.push({ group: a.group, name: a.name, dtype: a.dtype, shape: [...a.shape], offset, byteLength });
    offset += byteLength;
  }
  const bytes = new Uint8Array(offset);
  arrays.forEach((a, i) => bytes.set(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength), specs[i]!.offset));
  const layout: CheckpointLayout = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, arrays: specs, byteLength: offset, crc32: hex(crc32(bytes)) };
  const manifest = JSON.parse(JSON.stringify({ ...state, ...layout }, finiteReplacer)) as Record<string, unknown>;
  return { name, manifest, weights: bytes.buffer };
}

/**
 * Checks a record against its manifest and unpacks it.
 *
 * @param record - A record read from a store.
 * @returns The manifest's state (non-finite numbers restored) and the arrays (copies).
 * @throws {@link KdDataError} `CHECKPOINT_CORRUPT` for a manifest that is not a kd-ts checkpoint,
 *   a blob of the wrong length (truncated) or with the wrong checksum.
 * @throws {@link KdConfigError} `CHECKPOINT_UNSUPPORTED` for a checkpoint of a newer format version.
 * @internal
 */
export function decodeCheckpoint(record: CheckpointRecord): { state: Record<string, unknown>; arrays: CheckpointArray[] } {
  const m = record.manifest as Partial<CheckpointLayout> | null;
  const where = `checkpoint ${record.name}`;
  if (m === null || typeof m !== 'object' || m.format !== CHECKPOINT_FORMAT || !Array.isArray(m.arrays) || typeof m.byteLength !== 'number') {
    throw new KdDataError('CHECKPOINT_CORRUPT', `${where}: its manifest is not a kd-ts checkpoint manifest (no format "${CHECKPOINT_FORMAT}", arrays and byteLength): the record is damaged; resume from an older checkpoint or start afresh`);
  }
  if (typeof m.version !== 'number' || m.version > CHECKPOINT_VERSION) {
    throw new KdConfigError('CHECKPOINT_UNSUPPORTED', `${where} has format version ${String(m.version)}; this kd-ts reads version ${CHECKPOINT_VERSION}: resume it with the kd-ts that wrote it`);
  }
  const bytes = new Uint8Array(record.weights);
  if (bytes.byteLength !== m.byteLength) {
    throw new KdDataError('CHECKPOINT_CORRUPT', `${where}: its weights hold ${bytes.byteLength} bytes, the manifest says ${m.byteLength} (truncated or overwritten): resume from an older checkpoint`);
  }
  const sum = hex(crc32(bytes));
  if (sum !== m.crc32) {
    throw new KdDataError('CHECKPOINT_CORRUPT', `${where}: its weights' CRC-32 is ${sum}, the manifest says ${String(m.crc32)} (damaged bytes): resume from an older checkpoint`);
  }
  const arrays = m.arrays.map((spec) => {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.offset + spec.byteLength > bytes.byteLength || count * 4 !== spec.byteLength || (spec.dtype !== 'float32' && spec.dtype !== 'int32')) {
      throw new KdDataError('CHECKPOINT_CORRUPT', `${where}: array ${spec.group}/${spec.name} does not fit its blob: the manifest is damaged`);
    }
    const slice = record.weights.slice(spec.offset, spec.offset + spec.byteLength);
    return { group: spec.group, name: spec.name, dtype: spec.dtype, shape: [...spec.shape], data: spec.dtype === 'int32' ? new Int32Array(slice) : new Float32Array(slice) };
  });
  const state = JSON.parse(JSON.stringify(record.manifest), finiteReviver) as Record<string, unknown>;
  for (const key of ['format', 'version', 'arrays', 'byteLength', 'crc32']) delete state[key];
  return { state, arrays };
}

function finiteReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? { $number: String(value) } : value;
}

function finiteReviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const n = (value as { $number?: unknown }).$number;
    if (keys.length === 1 && typeof n === 'string') return Number(n);
  }
  return value;
}

let table: Uint32Array | undefined;

/**
 * CRC-32 (IEEE 802.3, as zlib's) of some bytes.
 * @internal
 */
export function crc32(bytes: Uint8Array): number {
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
