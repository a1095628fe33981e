/**
 * The one table renderer of every listing (images, snapshots, lease ls): a header row and one
 * row per item, columns separated by two spaces, each column as wide as its widest cell
 * (header included), numbers right-aligned. The last column is not padded (no trailing blanks).
 */
export interface Column<R> {
  header: string;
  value: (row: R) => string;
  /** 'right' for numbers and sizes; default 'left'. */
  align?: 'left' | 'right';
}

export const COLUMN_GAP = '  ';

export function renderTable<R>(rows: readonly R[], columns: readonly Column<R>[]): string[] {
  const cells = rows.map((r) => columns.map((c) => c.value(r)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i].length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const last = i === values.length - 1;
        if (columns[i].align === 'right') return v.padStart(widths[i]);
        return last ? v : v.padEnd(widths[i]);
      })
      .join(COLUMN_GAP)
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)];
}
