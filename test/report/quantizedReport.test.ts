/**
 * compressionReport's quantized students: one entry per `quantize` format,
 * measured on the model tfjs loads back from the quantized save.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { compressionReport, formatCompressionReport, withSeed } from '../../src/index.js';

const dense = (hidden: number, seed: number) =>
  withSeed(seed, () =>
    tfl.sequential({
      layers: [tfl.layers.dense({ units: hidden, activation: 'relu', inputShape: [200] }), tfl.layers.dense({ units: 5 })],
    }),
  );

describe('compressionReport with quantize', () => {
  it('adds one measured row per format: bytes, accuracy, agreement with the teacher and the float32 student', async () => {
    const teacher = dense(256, 1);
    const student = dense(48, 2);
    const x = withSeed(3, () => tf.randomNormal([400, 200]));
    const labels = tf.tidy(() => tf.cast(tf.argMax(teacher.predict(x) as tf.Tensor, -1), 'int32'));
    const before = tf.memory().numTensors;
    const report = await compressionReport({ teacher, student, x, labels, repeats: 1, latencyRows: 50, quantize: ['uint8', 'float16'] });
    expect(tf.memory().numTensors).toBe(before);
    expect(report.quantized!.map((q) => q.dtype)).toEqual(['uint8', 'float16']);
    const [uint8, float16] = report.quantized!;
    // The 200 × 48 kernel is quantized; the rest (58 + 245 values) stays float32.
    expect(uint8!.weightBytes).toBe(200 * 48 + (48 + 48 * 5 + 5) * 4);
    expect(float16!.weightBytes).toBe(200 * 48 * 2 + (48 + 48 * 5 + 5) * 4);
    expect(uint8!.weightBytes / report.student.weightBytes).toBeLessThanOrEqual(0.3);
    expect(uint8!.keptFloat32).toEqual(['dense_Dense2/bias', 'dense_Dense3/kernel', 'dense_Dense3/bias'].map((n) => expect.stringMatching(n.replace(/\d+/, '\\d+'))));
    expect(uint8!.bytesRatio).toBeCloseTo(report.teacher.bytes / uint8!.bytes, 12);
    expect(uint8!.bytes).toBeLessThan(report.student.bytes);
    for (const q of report.quantized!) {
      expect(q.studentAgreement).toBeGreaterThanOrEqual(0.95);
      expect(Math.abs(q.agreement - report.agreement)).toBeLessThanOrEqual(0.05);
      expect(Math.abs(q.accuracy! - report.student.accuracy!)).toBeLessThanOrEqual(0.05);
    }
    expect(float16!.studentAgreement).toBeGreaterThanOrEqual(uint8!.studentAgreement);

    const text = formatCompressionReport(report);
    expect(text).toMatch(/\| weights stored as +\| saved size \| teacher ÷ \| accuracy \| agreement with teacher \| agreement with float32 student \|/);
    expect(text).toMatch(/\| teacher, float32 +\| .* \| +1\.00× \|/);
    expect(text).toMatch(/\| student, uint8 +\| .* KiB \| .*× \| .* % \| .* % \| .* % \|/);
    expect(text.split('\n').filter((line) => line.startsWith('| student, '))).toHaveLength(3);
    // Without quantize: no field, no second table.
    const plain = await compressionReport({ teacher, student, x, repeats: 1, latencyRows: 10 });
    expect(plain.quantized).toBeUndefined();
    expect(formatCompressionReport(plain)).not.toContain('weights stored as');
    tf.dispose([x, labels]);
  });

  it('refuses an unknown format with a typed error before measuring anything', async () => {
    const x = tf.randomNormal([4, 200]);
    await expect(
      compressionReport({ teacher: dense(8, 1), student: dense(4, 2), x, quantize: ['int8' as 'uint8'] }),
    ).rejects.toMatchObject({ name: 'KdConfigError', code: 'INVALID_OPTION' });
    x.dispose();
  });
});
