import * as path from 'node:path';
import { KdConfigError } from '../errors.js';

/** The file formats of teacher outputs. */
export type TeacherFileFormat = 'jsonl' | 'npy' | 'arrow';

/** The extensions of each format. */
export const EXTENSIONS: Record<TeacherFileFormat, string[]> = {
  jsonl: ['.jsonl', '.ndjson', '.json'], // Spark's df.write.json writes JSON Lines as .json
  npy: ['.npy'],
  arrow: ['.arrow', '.arrows', '.feather', '.ipc'],
};
/** The extension a shard of each format is written with. */
export const DEFAULT_EXTENSION: Record<TeacherFileFormat, string> = { jsonl: '.jsonl', npy: '.npy', arrow: '.arrow' };

/** The given format, checked, or the one the file's extension says. */
export function formatOf(file: string, format: TeacherFileFormat | undefined): TeacherFileFormat {
  if (format !== undefined) {
    if (!(format in EXTENSIONS)) {
      throw new KdConfigError('INVALID_OPTION', `format must be 'jsonl', 'npy' or 'arrow', got ${String(format)}`);
    }
    return format;
  }
  const found = formatOfName(file);
  if (found === undefined) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `cannot tell the format of ${file} from its extension: use ${Object.values(EXTENSIONS).flat().join(', ')}, or pass { format }`,
    );
  }
  return found;
}

/** The format of a file name's extension, if any. */
export function formatOfName(name: string): TeacherFileFormat | undefined {
  const extension = path.extname(name).toLowerCase();
  return (Object.keys(EXTENSIONS) as TeacherFileFormat[]).find((f) => EXTENSIONS[f].includes(extension));
}
