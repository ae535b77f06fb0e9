/**
 * Writes a run's report folder: `report.md` (settings, table, summary,
 * figure), the figure as `figure.svg` and `figure.png` (for places that do
 * not show SVG), and `results.json` (every number, for later comparison).
 *
 * @packageDocumentation
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { svgToPng } from '../shared/png.js';

/** What goes into a report. */
export interface ReportContent {
  title: string;
  /** The run's settings, printed as JSON. */
  settings: object;
  backend: string;
  wallSeconds: number;
  /** A Markdown table. */
  table: string;
  /** The summary's closing sentence. */
  sentence: string;
  /** The figure (learning curves and what distillation transfers), as SVG. */
  svg: string;
  /** Everything measured, saved as `results.json`. */
  results: object;
}

/** Paths written by {@link writeReport}. */
export interface ReportFiles {
  markdown: string;
  svg: string;
  png: string;
  json: string;
}

/**
 * Writes the report into `outDir` (created if missing), replacing an
 * earlier report there.
 *
 * @param outDir - Target folder.
 * @param content - See {@link ReportContent}.
 * @returns The paths written.
 */
export async function writeReport(outDir: string, content: ReportContent): Promise<ReportFiles> {
  await mkdir(outDir, { recursive: true });
  const files: ReportFiles = {
    markdown: path.join(outDir, 'report.md'),
    svg: path.join(outDir, 'figure.svg'),
    png: path.join(outDir, 'figure.png'),
    json: path.join(outDir, 'results.json'),
  };
  const picture = await svgToPng(content.svg);
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, ${os.platform()}`;
  const markdown = [
    `# ${content.title}`,
    '',
    `- Command: \`${['npx tsx', ...process.argv.slice(1).map((a) => path.relative(process.cwd(), a) || a)].join(' ')}\``,
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machine}; load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')}`,
    `- tfjs backend: ${content.backend}`,
    `- Wall time: ${content.wallSeconds.toFixed(0)} s`,
    '',
    '## Results',
    '',
    content.table,
    '',
    'Test errors in brackets: difference from the teacher. Sizes, latencies and agreement from kd-ts `compressionReport`',
    '(latency: median of repeated timed runs predicting 1,000 test images; the teacher line is from the first report).',
    'The uint8 line is the distilled student saved with `saveStudent(..., { quantize: \'uint8\' })`\'s format and loaded back by tfjs.',
    '',
    content.sentence,
    '',
    '## Figure',
    '',
    `![Learning curves, and what distillation transfers](${path.basename(files.svg)})`,
    '',
    `The same figure as PNG: [${path.basename(files.png)}](${path.basename(files.png)})` +
      (picture.font === undefined ? ' (no system font was found, so it has no text: open the SVG).' : '.'),
    '',
    '## Settings',
    '',
    '```json',
    JSON.stringify(content.settings, null, 2),
    '```',
    '',
  ].join('\n');
  await writeFile(files.svg, content.svg);
  await writeFile(files.png, picture.png);
  await writeFile(files.markdown, markdown);
  await writeFile(files.json, `${JSON.stringify({ settings: content.settings, backend: content.backend, wallSeconds: content.wallSeconds, ...content.results }, null, 2)}\n`);
  return files;
}
