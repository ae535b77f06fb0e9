import seedrandom from 'seedrandom';
import { withMathRandom } from '../compat/mathRandom.js';

/** A seed for {@link withSeed} and the Distiller's `seed` option. */
export type Seed = number | string;

/**
 * Runs `fn` with tfjs's unseeded randomness drawn from a seeded stream, so
 * weight initializers, dropout masks and anything else that falls back to
 * `Math.random` repeat exactly for the same seed.
 *
 * tfjs seeds its own generators (`randomUniform`, `randomNormal`, hence every
 * initializer and dropout without an explicit `seed`) from `Math.random()`;
 * `withSeed` swaps `Math.random` for a seeded Alea generator (`seedrandom`)
 * for the duration of `fn` (sync or async) and restores it afterwards. Other
 * code using `Math.random` meanwhile draws from the same stream, so keep
 * concurrent work out of a seeded region when you need bit-exact repeats.
 *
 * @param seed - Any number or string.
 * @param fn - Work to run; a returned promise keeps the seed until it settles.
 * @returns Whatever `fn` returns.
 * @throws {@link KdBackendError} (`TFJS_INTERNALS_CHANGED`) when `Math.random` cannot be replaced (a frozen global).
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { withSeed } from 'kd-ts';
 *
 * const build = () => tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * const a = withSeed(42, build);
 * const b = withSeed(42, build); // same initial weights as `a`
 * ```
 */
export function withSeed<T>(seed: Seed, fn: () => T): T {
  return withMathRandom(seededRandom(seed), fn);
}

/**
 * A seeded generator of floats in [0, 1) (Alea, from `seedrandom`).
 *
 * @param seed - Any number or string.
 * @returns A function with `Math.random`'s contract.
 *
 * @example
 * ```ts
 * import { seededRandom } from 'kd-ts';
 * const random = seededRandom(7);
 * console.log(random(), random());
 * ```
 */
export function seededRandom(seed: Seed): () => number {
  const prng = seedrandom.alea(String(seed));
  return () => prng();
}

/** Fisher–Yates shuffle of 0..n−1 with the given generator. */
export function shuffledIndices(n: number, random: () => number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = order[i]!;
    order[i] = order[j]!;
    order[j] = tmp;
  }
  return order;
}

/** A seeded Alea stream whose position can be read and set again (checkpoints). @internal */
export interface SeededStream {
  /** The next float in [0, 1). */
  readonly next: () => number;
  /** The stream's position, JSON-serializable. */
  state(): object;
  /** Continues from a position read by `state()`. */
  restore(state: object): void;
}

/**
 * The stream {@link seededRandom} gives (same seed, same floats), with its state.
 * @internal
 */
export function seededStream(seed: Seed): SeededStream {
  let prng = seedrandom.alea(String(seed), { state: true });
  return {
    next: () => prng(),
    state: () => ({ ...prng.state() }),
    restore: (state) => {
      prng = seedrandom.alea('', { state: state as seedrandom.State.Alea });
    },
  };
}
