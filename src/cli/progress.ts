import * as cliProgress from 'cli-progress';
import { Progress, ProgressTask, warningsOnly } from '../progress';

function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}

/**
 * Progress bars on stderr when it is a TTY (never on stdout, never with --quiet or --json);
 * otherwise only warnings are printed.
 */
export function terminalProgress(opts: { quiet?: boolean; json?: boolean }): Progress & { stop(): void } {
  const warn = (m: string) => {
    if (bars) bars.log(`imgtool: warning: ${m}\n`);
    else process.stderr.write(`imgtool: warning: ${m}\n`);
  };
  const enabled = !!process.stderr.isTTY && !opts.quiet && !opts.json;
  let bars: cliProgress.MultiBar | undefined;
  if (!enabled) return { ...warningsOnly(warn), stop() {} };
  bars = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      clearOnComplete: false,
      hideCursor: true,
      format: ' {label} |{bar}| {percentage}% {doneH}/{totalH}',
      formatValue: (v, _o, type) => (type === 'percentage' ? String(v).padStart(3) : String(v)),
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    warn,
    task(label: string, total?: number): ProgressTask {
      const t = total ?? 0;
      const bar = bars!.create(Math.max(t, 1), 0, { label: label.padEnd(24).slice(0, 24), doneH: fmtBytes(0), totalH: t ? fmtBytes(t) : '?' });
      let tot = t;
      return {
        update(done: number, total?: number) {
          if (total !== undefined && total !== tot) {
            tot = total;
            bar.setTotal(Math.max(total, 1));
          }
          bar.update(done, { doneH: fmtBytes(done), totalH: tot ? fmtBytes(tot) : '?' });
        },
        finish() {
          bar.update(Math.max(tot, 1), { doneH: fmtBytes(tot), totalH: fmtBytes(tot) });
          bar.stop();
        },
      };
    },
    stop() {
      bars?.stop();
    },
  };
}

export { fmtBytes };
