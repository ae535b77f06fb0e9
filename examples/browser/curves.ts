/**
 * The learning-curve chart: test accuracy per epoch for the teacher, the
 * scratch student and the distilled student, drawn with chart.js as the
 * points arrive.
 */
import { CategoryScale, Chart, Legend, LineController, LineElement, LinearScale, PointElement, Tooltip } from 'chart.js';
import type { Series } from './experiment.js';

// Register only what a line chart needs: chart.js is tree-shakable.
Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip);

const STYLE: Record<Series, { label: string; color: string; dash?: number[] }> = {
  teacher: { label: 'teacher', color: '#6b7280', dash: [6, 4] },
  scratch: { label: 'student, labels only', color: '#d97706' },
  distilled: { label: 'student, distilled (kd-ts)', color: '#2563eb' },
};
const ORDER: Series[] = ['teacher', 'scratch', 'distilled'];

/** A live accuracy-per-epoch chart. */
export class CurveChart {
  private readonly chart: Chart<'line', (number | null)[], number>;

  /** @param canvas - Where to draw. */
  constructor(canvas: HTMLCanvasElement) {
    this.chart = new Chart(canvas, {
      type: 'line',
      data: {
        labels: [],
        datasets: ORDER.map((series) => ({
          label: STYLE[series].label,
          data: [],
          borderColor: STYLE[series].color,
          backgroundColor: STYLE[series].color,
          borderDash: STYLE[series].dash ?? [],
          spanGaps: true,
        })),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { title: { display: true, text: 'epoch' } },
          // Scaled to the data: the students differ by a few points, which a 0–100 axis would hide.
          y: { title: { display: true, text: 'test accuracy (%)' }, suggestedMax: 100 },
        },
      },
    });
  }

  /** Clears the chart for a run of `epochs` epochs. */
  reset(epochs: number): void {
    this.chart.data.labels = Array.from({ length: epochs }, (_, i) => i + 1);
    for (const dataset of this.chart.data.datasets) dataset.data = new Array<number | null>(epochs).fill(null);
    this.chart.update();
  }

  /**
   * Adds one measured point. Epoch 0 (before training, near chance) is not
   * drawn: it would stretch the axis over the whole 10–100 % range.
   */
  add(series: Series, epoch: number, accuracy: number): void {
    if (epoch < 1) return;
    const labels = this.chart.data.labels!;
    // A teacher trained in the page can run for more epochs than the students.
    while (labels.length < epoch) {
      labels.push(labels.length + 1);
      for (const dataset of this.chart.data.datasets) dataset.data.push(null);
    }
    this.chart.data.datasets[ORDER.indexOf(series)]!.data[epoch - 1] = accuracy * 100;
    this.chart.update();
  }
}
