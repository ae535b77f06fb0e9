/**
 * Prints rows as a Markdown table (first column left-aligned, the others
 * right-aligned), so example output can be pasted into a README as is.
 */
export function printMarkdownTable(header: string[], rows: string[][]): void {
  console.log(markdownTable(header, rows));
}

/** The table {@link printMarkdownTable} prints, as one string (lines joined by `\n`), e.g. for a report file. */
export function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (values: string[]) =>
    `| ${values.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
