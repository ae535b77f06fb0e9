/**
 * Writes a run's report folder: `report.md` (settings, table, chart),
 * `learning-curves.svg` and `results.json` (every number, for later
 * comparison).
 *
 * @packageDocumentation
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

/** What goes into a report. */
export interface ReportContent {
  title: string;
  /** The run's settings, printed as JSON. */
  settings: object;
  backend: string;
  wallSeconds: number;
  /** A Markdown table. */
  table: string;
  /** The learning curves. */
  svg: string;
  /** Everything measured, saved as `results.json`. */
  results: object;
}

/** Paths written by {@link writeReport}. */
export interface ReportFiles {
  markdown: string;
  svg: string;
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
    svg: path.join(outDir, 'learning-curves.svg'),
    json: path.join(outDir, 'results.json'),
  };
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
    '',
    '## Learning curves',
    '',
    `![Test errors after every epoch](${path.basename(files.svg)})`,
    '',
    '## Settings',
    '',
    '```json',
    JSON.stringify(content.settings, null, 2),
    '```',
    '',
  ].join('\n');
  await writeFile(files.svg, content.svg);
  await writeFile(files.markdown, markdown);
  await writeFile(files.json, `${JSON.stringify({ settings: content.settings, backend: content.backend, wallSeconds: content.wallSeconds, ...content.results }, null, 2)}\n`);
  return files;
}
