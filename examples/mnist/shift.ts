/**
 * Seeded random translations of MNIST digits, the augmentation of Hinton et
 * al. 2015 (§3): "the input images were jittered by up to two pixels in any
 * direction". Each digit moves by its own (dx, dy), each drawn uniformly from
 * −maxShift..maxShift; pixels moved in from outside the frame are blank (0).
 *
 * @packageDocumentation
 */
import { seededRandom, type Seed } from '../../src/index.js';
import { MNIST_PIXELS } from '../shared/mnist.js';

/** Side of an MNIST digit in pixels. */
const SIDE = 28;

/**
 * A shifted copy of `size` digits stored row-major in `x` (each 28 × 28).
 * The input is left untouched.
 *
 * @param x - Pixels, `size × 784`.
 * @param seed - Seed of the shifts: the same seed gives the same copy.
 * @param maxShift - Largest move along each axis, in pixels (default 2).
 * @returns A new array of the same length.
 */
export function shiftDigits(x: Float32Array, seed: Seed, maxShift = 2): Float32Array {
  if (x.length % MNIST_PIXELS !== 0) {
    throw new RangeError(`x must hold whole 28 × 28 digits (a multiple of ${MNIST_PIXELS} values), got ${x.length}`);
  }
  if (!Number.isInteger(maxShift) || maxShift < 0 || maxShift >= SIDE) {
    throw new RangeError(`maxShift must be an integer from 0 to ${SIDE - 1}, got ${maxShift}`);
  }
  const random = seededRandom(seed);
  const draw = () => Math.floor(random() * (2 * maxShift + 1)) - maxShift;
  const out = new Float32Array(x.length);
  for (let offset = 0; offset < x.length; offset += MNIST_PIXELS) {
    const dx = draw();
    const dy = draw();
    shiftOne(x, out, offset, dx, dy);
  }
  return out;
}

/** Writes digit `offset` of `from`, moved right by dx and down by dy, into `to` (zeros elsewhere). */
function shiftOne(from: Float32Array, to: Float32Array, offset: number, dx: number, dy: number): void {
  // Only the rows and columns that stay inside the frame are copied; `to` starts as zeros.
  const firstColumn = Math.max(0, dx);
  const lastColumn = Math.min(SIDE, SIDE + dx); // exclusive
  if (firstColumn >= lastColumn) return;
  for (let row = Math.max(0, dy); row < Math.min(SIDE, SIDE + dy); row++) {
    const source = offset + (row - dy) * SIDE - dx;
    to.set(from.subarray(source + firstColumn, source + lastColumn), offset + row * SIDE + firstColumn);
  }
}
