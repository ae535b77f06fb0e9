/**
 * Quantized weights in tfjs's own weight format: per-tensor affine `uint8` /
 * `uint16` (`value = q · scale + min`) and `float16`, written into the weight
 * manifest's `quantization` field that tfjs-core already decodes on load
 * (`tf.io.decodeWeights`, used by `tf.loadLayersModel` for every IOHandler).
 * tfjs 4.22 reads such weights but has no encoder (a TODO in its io_utils);
 * this is kd-ts's. Browser-safe: bytes and tfjs IOHandlers only.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError } from '../errors.js';

/** How quantized weights are stored: 1 byte (`uint8`) or 2 bytes (`uint16`, `float16`) per value. */
export type WeightQuantization = 'float16' | 'uint16' | 'uint8';

/** Options of {@link quantizeWeights}, {@link quantizeArtifacts} and {@link withQuantization}. */
export interface QuantizeOptions {
  /** Storage format of the quantized tensors. */
  dtype: WeightQuantization;
  /**
   * Tensors with fewer values than this stay float32 (default 1024): biases,
   * normalization parameters and small output layers. They weigh little, and
   * a per-tensor step is coarse for them (one step of a bias is an offset on
   * every output of its layer).
   */
  minElements?: number;
}

/** Why a tensor kept its own dtype. */
export type KeptReason = 'not-float32' | 'small' | 'float16-range' | 'already-quantized';

/** How one tensor was stored. */
export interface QuantizedWeightInfo {
  /** The weight's name in the manifest, e.g. `dense_Dense1/kernel`. */
  name: string;
  /** `float16`, `uint16` or `uint8`; or the tensor's own dtype when it was kept. */
  storedAs: WeightQuantization | WeightsManifestDtype;
  /** Why it was kept, when it was: int32/bool/string tensors, fewer than `minElements` values, or (float16) values beyond ±65504. */
  kept?: KeptReason;
  /** Largest |loaded − saved| value, computed with tfjs's own dequantization arithmetic; 0 for kept tensors. */
  maxAbsError: number;
  /** Bytes of this tensor in the weight data. */
  bytes: number;
}

/** What {@link quantizeWeights} did. */
export interface QuantizationSummary {
  /** The format asked for. */
  dtype: WeightQuantization;
  /** One entry per tensor, in manifest order. */
  weights: QuantizedWeightInfo[];
  /** Bytes of the weight data before quantization. */
  bytesBefore: number;
  /** Bytes of the weight data after quantization. */
  bytesAfter: number;
}

/** The dtypes of tfjs's weight manifest. */
export type WeightsManifestDtype = tf.io.WeightsManifestEntry['dtype'];

/** The largest finite float16 value. */
const FLOAT16_MAX = 65504;
const DEFAULT_MIN_ELEMENTS = 1024;
const QUANTIZED_BYTES: Record<WeightQuantization, number> = { uint8: 1, uint16: 2, float16: 2 };
const PLAIN_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const DTYPES: readonly WeightQuantization[] = ['float16', 'uint16', 'uint8'];

/**
 * Quantizes the float32 tensors of a weight manifest and its data, in
 * tfjs's format: `uint8`/`uint16` as per-tensor affine (min and max of the
 * tensor, the range nudged so that 0 is stored exactly, as tfjs's Python
 * converter does), `float16` with round-to-nearest-even.
 *
 * Left as they are: int32, bool, string and complex tensors (ids and
 * counters must stay exact), tensors with fewer than `minElements` values,
 * already-quantized tensors, and, for `float16`, any tensor holding a value
 * beyond ±65504 (float16's largest finite value): such a tensor stays
 * float32 rather than being clamped, and is listed with `kept:
 * 'float16-range'` in the summary.
 *
 * @param specs - The weight manifest entries, in data order.
 * @param data - The weight data the entries describe.
 * @param options - See {@link QuantizeOptions}.
 * @returns The new entries and data, and a per-tensor {@link QuantizationSummary}.
 * @throws {@link KdConfigError} `INVALID_OPTION` for an unknown dtype or a bad `minElements`.
 * @throws {@link KdDataError} `NON_FINITE_WEIGHTS` when a tensor to quantize holds NaN or ±Infinity;
 *   `CORRUPT_FILE` when the data is shorter or longer than the entries describe.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { quantizeWeights } from 'kd-ts/io';
 *
 * const named = [{ name: 'kernel', tensor: tf.randomNormal([64, 64]) }];
 * const { data, specs } = await tf.io.encodeWeights(named);
 * const quantized = quantizeWeights(specs, data, { dtype: 'uint8' });
 * console.log(quantized.summary.bytesAfter, 'bytes instead of', quantized.summary.bytesBefore);
 * const decoded = tf.io.decodeWeights(quantized.weightData, quantized.weightSpecs);
 * ```
 */
export function quantizeWeights(
  specs: readonly tf.io.WeightsManifestEntry[],
  data: tf.io.WeightData,
  options: QuantizeOptions,
): { weightSpecs: tf.io.WeightsManifestEntry[]; weightData: ArrayBuffer; summary: QuantizationSummary } {
  const { dtype, minElements } = resolveOptions(options);
  const source = new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
  const lengths = specByteLengths(specs, source);
  const parts: Uint8Array[] = [];
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const weights: QuantizedWeightInfo[] = [];
  let offset = 0;
  specs.forEach((spec, i) => {
    const bytes = source.subarray(offset, offset + lengths[i]!);
    offset += lengths[i]!;
    const keep = (reason: KeptReason) => {
      parts.push(bytes);
      weightSpecs.push({ ...spec });
      weights.push({ name: spec.name, storedAs: spec.quantization?.dtype ?? spec.dtype, kept: reason, maxAbsError: 0, bytes: bytes.byteLength });
    };
    if (spec.quantization !== undefined) return keep('already-quantized');
    if (spec.dtype !== 'float32') return keep('not-float32');
    const values = new Float32Array(bytes.slice().buffer);
    if (values.length < minElements) return keep('small');
    assertFinite(values, spec.name);
    if (dtype === 'float16' && values.some((v) => Math.abs(v) > FLOAT16_MAX)) return keep('float16-range');
    const encoded = dtype === 'float16' ? encodeFloat16(values) : encodeAffine(values, dtype);
    parts.push(encoded.bytes);
    weightSpecs.push({ ...spec, quantization: encoded.quantization });
    weights.push({ name: spec.name, storedAs: dtype, maxAbsError: encoded.maxAbsError, bytes: encoded.bytes.byteLength });
  });
  const weightData = concat(parts);
  return {
    weightSpecs,
    weightData,
    summary: { dtype, weights, bytesBefore: source.byteLength, bytesAfter: weightData.byteLength },
  };
}

/**
 * Quantizes the weights of saved model artifacts (what `model.save` hands an
 * IOHandler), leaving the topology and everything else as it is.
 *
 * @param artifacts - Artifacts with `weightSpecs` and `weightData`.
 * @param options - See {@link QuantizeOptions}.
 * @returns New artifacts (the input is not changed) and the {@link QuantizationSummary}.
 * @throws As {@link quantizeWeights}.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { quantizeArtifacts } from 'kd-ts/io';
 *
 * const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * await model.save(tf.io.withSaveHandler(async (artifacts) => {
 *   const { artifacts: small, summary } = quantizeArtifacts(artifacts, { dtype: 'uint8' });
 *   console.log(summary.bytesAfter, small.weightSpecs?.[0]?.quantization);
 *   return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(small) };
 * }));
 * ```
 */
export function quantizeArtifacts(
  artifacts: tf.io.ModelArtifacts,
  options: QuantizeOptions,
): { artifacts: tf.io.ModelArtifacts; summary: QuantizationSummary } {
  const { weightSpecs, weightData, summary } = quantizeWeights(artifacts.weightSpecs ?? [], artifacts.weightData ?? new ArrayBuffer(0), options);
  return { artifacts: { ...artifacts, weightSpecs, weightData }, summary };
}

/** Options of {@link withQuantization}. */
export interface WithQuantizationOptions extends QuantizeOptions {
  /** Called after each quantized save with what was stored how. */
  onQuantized?: (summary: QuantizationSummary) => void;
}

/**
 * Wraps any tfjs IOHandler (or a URL such as `indexeddb://student` or
 * `downloads://student`) so that `model.save` stores quantized weights, in
 * tfjs's standard format: stock `tf.loadLayersModel` reads the result
 * without kd-ts. Loading through the wrapper checks every weight's
 * quantization entry first and names a corrupt one with a typed error, where
 * stock tfjs throws a plain `Error` or, for a `scale` or `min` that is not a
 * number, silently loads NaN weights.
 *
 * @param handler - A tfjs IOHandler (`tf.io.browserDownloads()`, `tf.io.withSaveHandler(...)`, ...) or a URL
 *   that tfjs's router resolves (`indexeddb://`, `localstorage://`, `downloads://`; `file://` needs tfjs-node).
 * @param options - See {@link WithQuantizationOptions}.
 * @returns An IOHandler to pass to `model.save` (and `tf.loadLayersModel`, when the wrapped handler loads).
 * @throws {@link KdConfigError} `INVALID_OPTION` at once for bad options; when saving or loading, for a URL
 *   that no tfjs router (or more than one) handles, or a handler that cannot do the operation.
 * @throws {@link KdDataError} `CORRUPT_FILE` when loading a weight whose quantization entry is invalid.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { withQuantization } from 'kd-ts/io';
 *
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * // In a browser: a download of model.json + weights.bin at a quarter of the float32 size.
 * await student.save(withQuantization('downloads://student', { dtype: 'uint8' }));
 * // Or into IndexedDB, then back with stock tfjs:
 * await student.save(withQuantization('indexeddb://student', { dtype: 'float16' }));
 * const loaded = await tfl.loadLayersModel('indexeddb://student');
 * ```
 */
export function withQuantization(handler: tf.io.IOHandler | string, options: WithQuantizationOptions): tf.io.IOHandler {
  const settings = resolveOptions(options);
  const resolve = (kind: 'save' | 'load'): tf.io.IOHandler => {
    if (typeof handler !== 'string') return handler;
    const found = kind === 'save' ? tf.io.getSaveHandlers(handler) : tf.io.getLoadHandlers(handler);
    if (found.length !== 1) {
      throw new KdConfigError(
        'INVALID_OPTION',
        `${found.length === 0 ? 'no' : found.length} tfjs IOHandler${found.length === 1 ? '' : 's'} can ${kind} '${handler}': ` +
          "use a URL tfjs routes here (indexeddb://, localstorage:// or downloads:// in a browser) or pass an IOHandler",
      );
    }
    return found[0]!;
  };
  return {
    save: async (artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
      const target = resolve('save');
      if (target.save === undefined) throw new KdConfigError('INVALID_OPTION', 'the wrapped IOHandler cannot save: pass one with a save method');
      const { artifacts: quantized, summary } = quantizeArtifacts(artifacts, settings);
      const result = await target.save(quantized);
      options.onQuantized?.(summary);
      return result;
    },
    load: async (): Promise<tf.io.ModelArtifacts> => {
      const source = resolve('load');
      if (source.load === undefined) throw new KdConfigError('INVALID_OPTION', 'the wrapped IOHandler cannot load: pass one with a load method');
      const artifacts = await source.load();
      checkWeightSpecs(artifacts.weightSpecs ?? [], 'the loaded model');
      return artifacts;
    },
  };
}

/**
 * Checks the quantization entries of a weight manifest, so that a corrupt
 * file fails with a message naming the weight instead of loading NaN weights
 * (tfjs computes `q · scale + min` with whatever `scale` and `min` hold).
 *
 * @param specs - Manifest entries.
 * @param where - What the entries come from, for the message (e.g. a file path).
 * @throws {@link KdDataError} `CORRUPT_FILE` for an unknown quantization dtype, a `uint8`/`uint16` entry without
 *   a finite `scale` and `min`, a negative `scale`, or a `float16` entry on a tensor that is not float32.
 *
 * @example
 * ```ts
 * import { checkWeightSpecs } from 'kd-ts/io';
 * checkWeightSpecs([{ name: 'kernel', shape: [2, 2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.1, min: -1 } }], 'model.json');
 * ```
 */
export function checkWeightSpecs(specs: readonly tf.io.WeightsManifestEntry[], where: string): void {
  for (const spec of specs) {
    const q = spec.quantization as { dtype?: unknown; scale?: unknown; min?: unknown } | undefined;
    if (q === undefined) continue;
    const fail = (problem: string) => {
      throw new KdDataError('CORRUPT_FILE', `weight '${spec.name}' in ${where} ${problem}: the file is corrupt or was edited; save the model again`);
    };
    if (q === null || typeof q !== 'object') fail('has a quantization entry that is not an object');
    if (!DTYPES.includes(q.dtype as WeightQuantization)) fail(`has quantization dtype ${JSON.stringify(q.dtype)} (tfjs reads 'uint8', 'uint16' and 'float16')`);
    if (q.dtype === 'float16') {
      if (spec.dtype !== 'float32') fail(`is ${spec.dtype} but stored as float16, which tfjs decodes for float32 tensors only`);
      continue;
    }
    if (spec.dtype !== 'float32' && spec.dtype !== 'int32') fail(`is ${spec.dtype}, which tfjs cannot dequantize`);
    for (const key of ['scale', 'min'] as const) {
      if (typeof q[key] !== 'number' || !Number.isFinite(q[key])) fail(`has ${q.dtype} quantization with ${key} ${JSON.stringify(q[key]) ?? 'missing'} (a finite number is needed)`);
    }
    if ((q.scale as number) < 0) fail(`has a negative quantization scale (${q.scale as number})`);
  }
}

/**
 * Bytes one manifest entry takes in the weight data (quantized entries
 * included); string tensors are not fixed-size and are not handled here.
 *
 * @internal
 */
export function weightSpecBytes(spec: tf.io.WeightsManifestEntry): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const quantized = spec.quantization?.dtype;
  return count * (quantized !== undefined ? (QUANTIZED_BYTES[quantized] ?? NaN) : (PLAIN_BYTES[spec.dtype] ?? NaN));
}

function resolveOptions(options: QuantizeOptions): Required<QuantizeOptions> {
  if (options === null || typeof options !== 'object' || !DTYPES.includes(options.dtype)) {
    throw new KdConfigError('INVALID_OPTION', `quantization dtype must be 'float16', 'uint16' or 'uint8', got ${JSON.stringify(options?.dtype)}`);
  }
  const minElements = options.minElements ?? DEFAULT_MIN_ELEMENTS;
  if (!Number.isInteger(minElements) || minElements < 0) {
    throw new KdConfigError('INVALID_OPTION', `minElements must be an integer ≥ 0, got ${minElements}`);
  }
  return { dtype: options.dtype, minElements };
}

/** Byte length of every entry; string tensors are measured through their length prefixes, as tfjs does. */
function specByteLengths(specs: readonly tf.io.WeightsManifestEntry[], data: Uint8Array): number[] {
  let offset = 0;
  const lengths = specs.map((spec) => {
    let length: number;
    if (spec.dtype === 'string' && spec.quantization === undefined) {
      length = 0;
      const count = spec.shape.reduce((a, b) => a * b, 1);
      for (let i = 0; i < count && offset + length + 4 <= data.byteLength; i++) {
        length += 4 + new DataView(data.buffer, data.byteOffset + offset + length, 4).getUint32(0, true);
      }
    } else {
      length = weightSpecBytes(spec);
    }
    offset += length;
    return length;
  });
  if (offset !== data.byteLength || lengths.some((l) => !Number.isFinite(l))) {
    throw new KdDataError(
      'CORRUPT_FILE',
      `the weight data holds ${data.byteLength} bytes but its ${specs.length} manifest entries describe ${offset}: pass the data and the specs of the same model`,
    );
  }
  return lengths;
}

function assertFinite(values: Float32Array, name: string): void {
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new KdDataError(
      'NON_FINITE_WEIGHTS',
      `weight '${name}' holds ${values[bad]} at index ${bad}: a quantized file cannot store it; find where training diverged before saving`,
    );
  }
}

/**
 * Affine quantization to `bits` bits. The range is the tensor's min and max,
 * nudged so that 0 (zero padding, unused embedding rows, dead units) decodes
 * to exactly 0 when the range covers it; tfjs decodes `q · scale + min` in
 * double precision and stores the result as float32, which is what the
 * error below measures.
 */
function encodeAffine(values: Float32Array, dtype: 'uint8' | 'uint16') {
  const levels = dtype === 'uint8' ? 255 : 65535;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const codes = dtype === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  let scale = 1;
  let min = lo;
  if (hi > lo) {
    scale = (hi - lo) / levels;
    if (lo <= 0 && hi >= 0) min = -Math.round(-lo / scale) * scale;
    for (let i = 0; i < values.length; i++) {
      codes[i] = Math.min(levels, Math.max(0, Math.round((values[i]! - min) / scale)));
    }
  }
  let maxAbsError = 0;
  for (let i = 0; i < values.length; i++) {
    maxAbsError = Math.max(maxAbsError, Math.abs(Math.fround(codes[i]! * scale + min) - values[i]!));
  }
  return { bytes: new Uint8Array(codes.buffer), quantization: { dtype, scale, min }, maxAbsError };
}

function encodeFloat16(values: Float32Array) {
  const codes = new Uint16Array(values.length);
  let maxAbsError = 0;
  for (let i = 0; i < values.length; i++) {
    codes[i] = float16Bits(values[i]!);
    maxAbsError = Math.max(maxAbsError, Math.abs(float16Value(codes[i]!) - values[i]!));
  }
  return { bytes: new Uint8Array(codes.buffer), quantization: { dtype: 'float16' as const }, maxAbsError };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * IEEE 754 binary16 bits of a float32 value, rounded to nearest, ties to
 * even; overflow gives ±Infinity (callers keep such tensors in float32).
 *
 * @internal
 */
export function float16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 112; // rebias 127 → 15
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half: value = m · 2^-24, m = significand >> (14 − halfExponent).
    const shift = 14 - halfExponent;
    if (shift > 24) return sign;
    return sign | roundShift(mantissa | 0x800000, shift);
  }
  // A carry out of the mantissa moves into the exponent, as rounding should.
  return sign | ((halfExponent << 10) + roundShift(mantissa, 13));
}

/** `value >> shift`, rounded to nearest, ties to even. */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value - kept * 2 ** shift;
  const half = 2 ** (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** The float32 value of binary16 bits (what tfjs's decoder returns). */
function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function concat(parts: Uint8Array[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out.buffer;
}
