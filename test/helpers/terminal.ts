/**
 * A minimal terminal screen for tests of what a user sees on a TTY: applies text, CR/LF and the
 * cursor/erase sequences Node's readline and cli-progress emit (CSI A/B/C/D/G/K/J, ESC 7/8,
 * private modes ignored) and returns the screen's lines. No wrapping (bars are cut to the width).
 */
export function renderScreen(output: string): string[] {
  const lines: string[][] = [[]];
  let row = 0;
  let col = 0;
  let saved = { row: 0, col: 0 };
  const line = () => {
    while (lines.length <= row) lines.push([]);
    return lines[row];
  };
  for (let i = 0; i < output.length; i++) {
    const ch = output[i];
    if (ch === '\x1b') {
      const next = output[i + 1];
      if (next === '7') { saved = { row, col }; i++; continue; }
      if (next === '8') { ({ row, col } = saved); i++; continue; }
      if (next === '[') {
        const m = /^\[(\??)([0-9;]*)([A-Za-z])/.exec(output.slice(i + 1));
        if (!m) continue;
        i += m[0].length;
        if (m[1]) continue; // private modes: cursor visibility, line wrapping
        const n = m[2] === '' ? undefined : Number(m[2].split(';')[0]);
        switch (m[3]) {
          case 'A': row = Math.max(0, row - (n ?? 1)); break;
          case 'B': row += n ?? 1; break;
          case 'C': col += n ?? 1; break;
          case 'D': col = Math.max(0, col - (n ?? 1)); break;
          case 'G': col = Math.max(0, (n ?? 1) - 1); break;
          case 'K': {
            const l = line();
            if (!n) l.length = Math.min(l.length, col);
            else if (n === 1) for (let k = 0; k <= col && k < l.length; k++) l[k] = ' ';
            else l.length = 0;
            break;
          }
          case 'J':
            if (!n) { line().length = Math.min(line().length, col); lines.length = row + 1; }
            break;
          default: break;
        }
      }
      continue;
    }
    if (ch === '\r') { col = 0; continue; }
    if (ch === '\n') { row++; col = 0; line(); continue; }
    const l = line();
    while (l.length < col) l.push(' ');
    l[col++] = ch;
  }
  return lines.map((l) => l.join('').trimEnd());
}
