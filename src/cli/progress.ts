/**
 * Progress bars of the CLI: on stderr when it is a TTY (never on stdout, never with --quiet or
 * --json); otherwise only warnings are printed. cli-progress is loaded on the first bar only, so
 * commands that draw none (non-TTY, listings) do not pay for it.
 *
 * One line per task: ` label |████░░░░| 42% 117.8 MiB/280.0 MiB 35.2 MiB/s ETA 0:05`; a finished
 * task shows its average rate and how long it took (`in 8.2s`, `in 1:05`) instead of the ETA. The rate is
 * measured over the last RATE_WINDOW_MS, so a stall shows as a falling rate.
 *
 * Teardown: `stop()` redraws the bars a last time and ends their block with a newline, so the next
 * line (stdout or stderr) starts in column 0 below them. ImgtoolCommand stops the bars before it
 * prints anything on stdout; a task started after `stop()` opens a new block of bars.
 */
import type * as CliProgress from 'cli-progress';
import { Progress, ProgressTask, warningsOnly } from '../progress';

export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}

/** `m:ss`, or `h:mm:ss` from one hour. */
export function fmtDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export const RATE_WINDOW_MS = 5000;

/** Bytes per second over a sliding window of (time, bytes done) samples. */
export class RateMeter {
  private samples: Array<{ t: number; done: number }> = [];
  readonly started: number;
  constructor(now = Date.now()) {
    this.started = now;
    this.samples.push({ t: now, done: 0 });
  }
  add(done: number, now = Date.now()): void {
    this.samples.push({ t: now, done });
    while (this.samples.length > 2 && now - this.samples[1].t >= RATE_WINDOW_MS) this.samples.shift();
  }
  /** Bytes per second in the window ending now; undefined before any time has passed. */
  rate(now = Date.now()): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const dt = (now - first.t) / 1000;
    if (dt <= 0.05) return undefined;
    return (last.done - first.done) / dt;
  }
}

export interface BarState {
  label: string;
  done: number;
  /** Total bytes; 0 or undefined when unknown. */
  total?: number;
  /** Bytes per second; undefined when not yet measured. */
  rate?: number;
  /** Set when the task has finished: seconds it took. */
  elapsed?: number;
}

export const BAR_WIDTH = 30;
export const LABEL_WIDTH = 24;

/** One bar line (without colour or control characters), as the terminal shows it. */
export function formatBar(s: BarState): string {
  const label = s.label.length > LABEL_WIDTH ? s.label.slice(0, LABEL_WIDTH - 1) + '…' : s.label.padEnd(LABEL_WIDTH);
  const total = s.total && s.total > 0 ? s.total : undefined;
  const frac = s.elapsed !== undefined ? 1 : total ? Math.min(1, s.done / total) : 0;
  const filled = Math.round(frac * BAR_WIDTH);
  const bar = total || s.elapsed !== undefined ? '\u2588'.repeat(filled) + '\u2591'.repeat(BAR_WIDTH - filled) : '\u2591'.repeat(BAR_WIDTH);
  const pct = total || s.elapsed !== undefined ? `${String(Math.floor(frac * 100)).padStart(3)}% ` : '';
  const amount = total ? `${fmtBytes(s.done)}/${fmtBytes(total)}` : fmtBytes(s.done);
  let tail: string;
  if (s.elapsed !== undefined) {
    const avg = s.elapsed > 0 ? s.done / s.elapsed : undefined;
    tail = `${avg !== undefined ? ` ${fmtBytes(avg)}/s` : ''} in ${s.elapsed < 60 ? `${s.elapsed.toFixed(1)}s` : fmtDuration(s.elapsed)}`;
  } else if (s.rate === undefined) {
    tail = '';
  } else {
    const eta = total && s.rate > 0 ? ` ETA ${fmtDuration((total - s.done) / s.rate)}` : total ? ' ETA -:--' : '';
    tail = ` ${fmtBytes(s.rate)}/s${eta}`;
  }
  return ` ${label} |${bar}| ${pct}${amount}${tail}`;
}

export interface TerminalProgressOptions {
  quiet?: boolean;
  json?: boolean;
  /** Where bars and warnings go; default process.stderr. Bars only when it is a TTY. */
  stream?: NodeJS.WriteStream;
}

/** Progress rendered on a terminal (see the file comment). */
export function terminalProgress(opts: TerminalProgressOptions): Progress & { stop(): void } {
  const stream = opts.stream ?? process.stderr;
  let bars: CliProgress.MultiBar | undefined;
  const warn = (m: string) => {
    if (bars) bars.log(`imgtool: warning: ${m}\n`);
    else stream.write(`imgtool: warning: ${m}\n`);
  };
  const enabled = !!stream.isTTY && !opts.quiet && !opts.json;
  if (!enabled) return { ...warningsOnly(warn), stop() {} };

  const open = (): CliProgress.MultiBar => {
    if (bars) return bars;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cliProgress: typeof CliProgress = require('cli-progress');
    bars = new cliProgress.MultiBar({
      stream,
      clearOnComplete: false,
      hideCursor: true,
      linewrap: false,
      format: (_o: unknown, _p: unknown, payload: { state: () => BarState }) => formatBar(payload.state()),
    });
    return bars;
  };

  return {
    warn,
    task(label: string, total?: number): ProgressTask {
      let tot = total ?? 0;
      let done = 0;
      let elapsed: number | undefined;
      const meter = new RateMeter();
      const state = (): BarState => ({ label, done, total: tot, rate: meter.rate(), elapsed });
      let owner = open();
      let bar = owner.create(Math.max(tot, 1), 0, { state });
      const current = () => {
        // The bars were stopped (stdout was written) while this task runs: draw it in a new block.
        if (bars !== owner) {
          owner = open();
          bar = owner.create(Math.max(tot, 1), done, { state });
        }
        return bar;
      };
      return {
        update(d: number, t?: number) {
          if (elapsed !== undefined) return;
          done = d;
          meter.add(d);
          const b = current();
          if (t !== undefined && t !== tot) {
            tot = t;
            b.setTotal(Math.max(t, 1));
          }
          b.update(Math.min(d, Math.max(tot, 1)), { state });
        },
        finish() {
          if (elapsed !== undefined) return;
          elapsed = (Date.now() - meter.started) / 1000;
          done = Math.max(done, tot);
          tot = done;
          const b = current();
          b.setTotal(Math.max(tot, 1));
          b.update(Math.max(tot, 1), { state });
          b.stop();
        },
      };
    },
    stop() {
      const b = bars;
      bars = undefined;
      if (!b) return;
      b.update(); // flush warnings logged since the last redraw (stop() alone drops them)
      b.stop();
    },
  };
}
