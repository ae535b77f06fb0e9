/**
 * Learning curves as an SVG picture, drawn by Vega-Lite: the spec is compiled
 * to Vega and rendered headless with `View.toSVG()` (no browser, no canvas).
 *
 * @packageDocumentation
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { EpochPoint } from './train.js';

/** One line of the chart. */
export interface CurveSeries {
  /** Legend label. */
  model: string;
  curve: EpochPoint[];
}

/**
 * Test errors after every epoch, one line per model, as an SVG document.
 *
 * @param series - The models' learning curves.
 * @param testSize - Digits in the test set, for the axis title.
 * @param title - Chart title.
 * @returns The SVG text.
 */
export async function learningCurvesSvg(series: CurveSeries[], testSize: number, title: string): Promise<string> {
  const values = series.flatMap(({ model, curve }) => curve.map(({ epoch, testErrors }) => ({ model, epoch, testErrors })));
  const errors = values.map((v) => v.testErrors);
  // The data's own range: Vega's rounded log domain would waste half the height on decades no curve reaches.
  const domain = [Math.max(1, Math.floor(Math.min(...errors) * 0.9)), Math.ceil(Math.max(...errors) * 1.1)];
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 560,
    height: 320,
    data: { values },
    mark: { type: 'line', point: { size: 24 }, strokeWidth: 2 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
      // Log scale: early epochs of small students err ten times more than the final models.
      y: { field: 'testErrors', type: 'quantitative', title: `test errors (of ${testSize.toLocaleString('en-US')}), log scale`, scale: { type: 'log', domain, nice: false } },
      color: { field: 'model', type: 'nominal', title: null, sort: series.map((s) => s.model), legend: { orient: 'bottom', direction: 'vertical', labelLimit: 600 } },
    },
    config: { font: 'sans-serif' },
  };
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
