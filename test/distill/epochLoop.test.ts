import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { MeanLogs, runEpochs, type StepContext } from '../../src/distill/epochLoop.js';

describe('MeanLogs', () => {
  it('averages measures by example count and keeps scheduled settings at their last value', () => {
    const totals = new MeanLogs();
    totals.add({ loss: 1, temperature: 4, learningRate: 0.1 }, 3);
    totals.add({ loss: 3, temperature: 2, learningRate: 0.05 }, 1);
    expect(totals.mean()).toEqual({ loss: 1.5, temperature: 2, learningRate: 0.05 });
  });
});

describe('runEpochs', () => {
  const input = tfl.input({ shape: [1] });
  const student = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 2 }).apply(input) as tfl.SymbolicTensor });

  it('passes each step its epoch and its step counted from the run start', async () => {
    const seen: StepContext[] = [];
    await runEpochs(student, { epochs: 3, initialEpoch: 1 }, { steps: 2 }, undefined, async (onBatch) => {
      for (let batch = 0; batch < 2; batch++) {
        await onBatch(batch, 4, async (context) => {
          seen.push(context);
          return { loss: 0, distillation_loss: 0, agreement: 1 };
        });
      }
    });
    expect(seen).toEqual([
      { epoch: 1, step: 2, epochs: 3, stepsPerEpoch: 2 },
      { epoch: 1, step: 3, epochs: 3, stepsPerEpoch: 2 },
      { epoch: 2, step: 4, epochs: 3, stepsPerEpoch: 2 },
      { epoch: 2, step: 5, epochs: 3, stepsPerEpoch: 2 },
    ]);
  });

  it('counts steps from 0 when the epoch length is unknown', async () => {
    const steps: (number | null)[] = [];
    await runEpochs(student, { epochs: 2 }, { steps: null }, undefined, async (onBatch) => {
      await onBatch(0, 1, async (context) => {
        steps.push(context.step, context.stepsPerEpoch);
        return { loss: 0, distillation_loss: 0, agreement: 1 };
      });
    });
    expect(steps).toEqual([0, null, 1, null]);
  });
});
