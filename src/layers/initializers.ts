/**
 * FastLSTM's initializers: tfjs-layers initializer specs resolved and
 * serialized, tfjs's unit forget bias, and the orthogonal recurrent kernel
 * computed by kd-ts (`orthogonalInitializer.ts`).
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError } from '../errors.js';

/** A tfjs-layers initializer object (what `tfl.initializers.*()` returns). */
export type Initializer = ReturnType<typeof tfl.initializers.zeros>;

/**
 * An initializer as tfjs-layers accepts one: an identifier (`'glorotUniform'`,
 * `'orthogonal'`, `'zeros'`...), an object from `tfl.initializers`, or its
 * serialized form `{ className, config }`.
 */
export type InitializerSpec = string | Initializer | { className: string; config?: tf.serialization.ConfigDict };

/**
 * The initializer a FastLSTM option names.
 *
 * @param spec - An identifier, a `tfl.initializers` object, or `{ className, config }`.
 * @param option - The option's name, for the error message.
 * @returns The initializer.
 * @throws {@link KdConfigError} (`INVALID_OPTION`) for a spec tfjs does not know.
 */
export function resolveInitializer(spec: InitializerSpec, option: string): Initializer {
  if (typeof spec === 'string') {
    // tfjs's identifiers are its class names with a lower-case first letter.
    return fromRegistry(spec.charAt(0).toUpperCase() + spec.slice(1), {}, option);
  }
  if (typeof (spec as Initializer).apply === 'function') return spec as Initializer;
  const { className, config } = spec as { className?: unknown; config?: tf.serialization.ConfigDict };
  if (typeof className === 'string') return fromRegistry(className, config ?? {}, option);
  throw new KdConfigError(
    'INVALID_OPTION',
    `FastLSTM ${option} must be an identifier such as 'glorotUniform', a tfl.initializers object or ` +
      `{ className, config }, got ${describeValue(spec)}`,
  );
}

function fromRegistry(className: string, config: tf.serialization.ConfigDict, option: string): Initializer {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (entry === undefined) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `FastLSTM ${option}: unknown initializer '${className}': use one of tfl.initializers' names, e.g. 'glorotUniform'`,
    );
  }
  const [cls, fromConfig] = entry;
  return fromConfig(cls, config) as unknown as Initializer;
}

/** An initializer as `getConfig()` stores it: `{ className, config }`. */
export function serializeInitializer(initializer: Initializer): tf.serialization.ConfigDict {
  return { className: initializer.getClassName(), config: initializer.getConfig() };
}

/** tfjs's unitForgetBias: [biasInit(u), ones(u), biasInit(2u)], drawn in that order. */
export function unitForgetBiasInitializer(base: Initializer, units: number): Initializer {
  return {
    apply: () => tf.tidy(() => tf.concat([base.apply([units]), tf.ones([units]), base.apply([2 * units])])),
  } as unknown as Initializer;
}

/** A value as an error message names it: a quoted string, a class name, or `String(value)`. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value !== null && typeof value === 'object') {
    const named = value as { getClassName?: () => string; className?: string };
    if (typeof named.getClassName === 'function') return named.getClassName();
    if (typeof named.className === 'string') return named.className;
  }
  return String(value);
}
