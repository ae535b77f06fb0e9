import * as tfl from '@tensorflow/tfjs-layers';
import { quantizeArtifacts, type WeightQuantization } from '../io/quantize.js';
import { artifactsSize, modelArtifacts } from './modelSize.js';

/** What {@link compressionReport} measured of the student saved with quantized weights. */
export interface QuantizedMeasurements {
  /** How the student's weights were stored (see `withQuantization` in `kd-ts/io`). */
  dtype: WeightQuantization;
  /** Bytes of the quantized save: weight data plus `model.json`. */
  bytes: number;
  /** Bytes of the weight data alone. */
  weightBytes: number;
  /** Share of rows whose argmax equals the label, for the model loaded back; present when labels were given. */
  accuracy?: number;
  /** Share of rows where the loaded model's argmax equals the teacher's. */
  agreement: number;
  /** Share of rows where the loaded model's argmax equals the float32 student's. */
  studentAgreement: number;
  /** Teacher bytes ÷ these bytes. */
  bytesRatio: number;
  /** Tensors stored in float32 anyway (int32 ones, small ones, float16-range ones). */
  keptFloat32: string[];
}

/**
 * The student saved into memory with quantized weights and loaded back with
 * tfjs-layers' own loader (which dequantizes), as a user's program would
 * load the file. The caller disposes the model.
 */
export async function loadQuantizedCopy(
  student: tfl.LayersModel,
  dtype: WeightQuantization,
): Promise<{ model: tfl.LayersModel; bytes: number; weightBytes: number; keptFloat32: string[] }> {
  const { artifacts, summary } = quantizeArtifacts(await modelArtifacts(student), { dtype });
  const model = await tfl.loadLayersModel({ load: async () => artifacts });
  return {
    model,
    ...artifactsSize(artifacts),
    keptFloat32: summary.weights.filter((w) => w.kept !== undefined).map((w) => w.name),
  };
}
