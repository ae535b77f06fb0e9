/**
 * The page's result views: the table of models, and test digits with the
 * teacher's and the student's softened predictions as bars.
 */
import type { ModelRow, SoftExample } from './experiment.js';

/**
 * Fills a `<tbody>` with one row per model.
 *
 * @param body - The table body to replace.
 * @param rows - From the run's result.
 */
export function renderTable(body: HTMLTableSectionElement, rows: ModelRow[]): void {
  body.replaceChildren(
    ...rows.map((row) => {
      const tr = document.createElement('tr');
      tr.dataset.series = row.series;
      const cells = [
        row.model,
        row.parameters.toLocaleString('en-US'),
        percent(row.accuracy),
        row.agreement === null ? '–' : percent(row.agreement),
        `${row.inferenceMs.toFixed(1)} ms`,
        row.trainSeconds === 0 ? '–' : `${row.trainSeconds.toFixed(1)} s`,
      ];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }),
  );
}

/**
 * Shows each digit beside two rows of ten bars: the teacher's and the
 * student's probabilities at the run's temperature.
 *
 * @param container - Element to fill.
 * @param examples - From the run's result.
 * @param pixels - The test digits' grey levels (784 per digit).
 * @param temperature - Only for the caption.
 */
export function renderSoftPredictions(container: HTMLElement, examples: SoftExample[], pixels: Uint8Array, temperature: number): void {
  container.replaceChildren(
    ...examples.map((example) => {
      const figure = document.createElement('figure');
      figure.className = 'soft';
      figure.append(digitCanvas(pixels.subarray(example.index * 784, (example.index + 1) * 784)));
      figure.append(bars('teacher', example.teacher, example.label), bars('student', example.student, example.label));
      const caption = document.createElement('figcaption');
      caption.textContent = `label ${example.label}, T=${temperature}`;
      figure.append(caption);
      return figure;
    }),
  );
}

function percent(value: number): string {
  return `${(value * 100).toFixed(1)} %`;
}

function digitCanvas(pixels: Uint8Array): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = 28;
  canvas.height = 28;
  const context = canvas.getContext('2d')!;
  const image = context.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const grey = 255 - pixels[i]!; // dark ink on white
    image.data.set([grey, grey, grey, 255], i * 4);
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

function bars(who: string, probabilities: number[], label: number): HTMLElement {
  const row = document.createElement('div');
  row.className = `bars ${who}`;
  row.title = `${who}: ${probabilities.map((p, digit) => `${digit}: ${(p * 100).toFixed(1)} %`).join(', ')}`;
  const name = document.createElement('span');
  name.className = 'who';
  name.textContent = who;
  row.append(name);
  probabilities.forEach((p, digit) => {
    const bar = document.createElement('span');
    bar.className = digit === label ? 'bar true-class' : 'bar';
    bar.style.setProperty('--p', String(p));
    bar.dataset.digit = String(digit);
    row.append(bar);
  });
  return row;
}
