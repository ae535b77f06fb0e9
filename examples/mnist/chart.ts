/**
 * The demo's pictures, drawn by Vega-Lite: each spec is compiled to Vega and
 * rendered headless with `View.toSVG()` (no browser, no canvas); `report.ts`
 * turns the SVG into a PNG as well.
 *
 * @packageDocumentation
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { EpochPoint } from './train.js';

/** One line of the learning-curve chart. */
export interface CurveSeries {
  /** Legend label. */
  model: string;
  curve: EpochPoint[];
}

/** One test digit of the "what distillation transfers" panel. */
export interface DigitProbabilities {
  /** Row of the test set. */
  row: number;
  /** True class. */
  label: number;
  /** 784 grey levels in [0, 1]. */
  pixels: number[];
  /** Softened probabilities over the 10 classes, by model name (teacher first). */
  probabilities: Record<string, number[]>;
}

const FONT = { font: 'sans-serif' };

/** A Vega-Lite view spec, checked as a whole when compiled. */
type Spec = Record<string, unknown>;

/**
 * Test errors after every epoch, one line per model, as an SVG document.
 *
 * @param series - The models' learning curves.
 * @param testSize - Digits in the test set, for the axis title.
 * @param title - Chart title.
 * @returns The SVG text.
 */
export async function learningCurvesSvg(series: CurveSeries[], testSize: number, title: string): Promise<string> {
  return render({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', ...learningCurves(series, testSize, title), config: FONT } as vl.TopLevelSpec);
}

/**
 * The demo's figure: the learning curves above, and below them, for a few
 * test digits, the teacher's and both students' probabilities at the
 * distillation temperature (what the distilled student was trained to match).
 *
 * @param series - The models' learning curves.
 * @param testSize - Digits in the test set.
 * @param title - Title of the curves.
 * @param digits - The digits of the lower panel.
 * @param caption - Title of the lower panel (lines); its bars are colored as the curves, in the same order.
 * @returns The SVG text.
 */
export async function demoFigureSvg(series: CurveSeries[], testSize: number, title: string, digits: DigitProbabilities[], caption: string[]): Promise<string> {
  const models = Object.keys(digits[0]?.probabilities ?? {});
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    vconcat: [
      learningCurves(series, testSize, title),
      {
        title: { text: caption, anchor: 'start' },
        // Two digits per row, each as its picture beside its bars (colored as the curves: the caption says so).
        vconcat: pairs(digits).map((pair) => ({
          hconcat: pair.map((digit) => ({ hconcat: [digitImage(digit), probabilityBars(digit, models)] })),
        })),
      },
    ],
    resolve: { scale: { color: 'independent' } },
    config: { ...FONT, concat: { spacing: 18 } },
  } as unknown as vl.TopLevelSpec;
  return render(spec);
}

function learningCurves(series: CurveSeries[], testSize: number, title: string): Spec {
  const values = series.flatMap(({ model, curve }) => curve.map(({ epoch, testErrors }) => ({ model, epoch, testErrors })));
  const errors = values.map((v) => v.testErrors);
  // The data's own range: Vega's rounded log domain would waste half the height on decades no curve reaches.
  const domain = [Math.max(1, Math.floor(Math.min(...errors) * 0.9)), Math.ceil(Math.max(...errors) * 1.1)];
  return {
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
  };
}

/** The digit as a 28 × 28 grey image (rect marks), titled with its label. */
function digitImage(digit: DigitProbabilities): Spec {
  const values = digit.pixels.map((ink, i) => ({ x: i % 28, y: Math.floor(i / 28), ink }));
  return {
    title: { text: `#${digit.row}: a ${digit.label}`, fontSize: 11 },
    width: 84,
    height: 84,
    data: { values },
    mark: { type: 'rect' },
    view: { stroke: null },
    encoding: {
      x: { field: 'x', type: 'ordinal', axis: null },
      y: { field: 'y', type: 'ordinal', axis: null },
      color: { field: 'ink', type: 'quantitative', scale: { domain: [0, 1], range: ['white', 'black'] }, legend: null },
    },
  };
}

/** Grouped bars: one group per class, one bar per model. */
function probabilityBars(digit: DigitProbabilities, models: string[]): Spec {
  const values = models.flatMap((model) => digit.probabilities[model]!.map((p, digitClass) => ({ model, digitClass, p })));
  return {
    width: 220,
    height: 84,
    data: { values },
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'digitClass', type: 'ordinal', title: 'class', axis: { labelAngle: 0 } },
      xOffset: { field: 'model', type: 'nominal', sort: models },
      // A square-root scale shows the small probabilities the teacher gives the wrong classes.
      y: { field: 'p', type: 'quantitative', title: 'probability (sqrt scale)', scale: { type: 'sqrt', domain: [0, 1] } },
      color: { field: 'model', type: 'nominal', title: null, sort: models, legend: null },
    },
  };
}

/** [a, b, c, d, e] → [[a, b], [c, d], [e]]. */
function pairs<T>(items: T[]): T[][] {
  return Array.from({ length: Math.ceil(items.length / 2) }, (_, i) => items.slice(2 * i, 2 * i + 2));
}

async function render(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
