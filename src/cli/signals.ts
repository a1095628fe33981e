/**
 * SIGINT / SIGTERM for CLI commands. On the first signal the running command is cancelled
 * (src/cancel): its library call fails with a CancelledError at the next write or read, and
 * its own error paths abort outputs (temp files removed), undo a load's names and release
 * the process lease. The process then exits with 128 + the signal number (130 / 143) as
 * soon as the command has wound down, or after WIND_DOWN_MS at the latest, running the
 * registered last-resort cleanups first (temp files, names; the process lease is released
 * by the leases' exit hook). A second signal exits at once, after those cleanups.
 */
import { cancel, runCleanups } from '../cancel';

const EXIT_STATUS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };
export const WIND_DOWN_MS = 10_000;

let installed = false;
let received: NodeJS.Signals | undefined;
let onInterrupt: (() => void) | undefined;
let settle: () => void = () => {};
const settled = new Promise<void>((res) => (settle = res));

/** The exit status for the signal received, if any. */
export function interruptedStatus(): number | undefined {
  return received ? EXIT_STATUS[received] : undefined;
}

function exitNow(status: number): never {
  runCleanups();
  process.exit(status);
}

function handle(sig: NodeJS.Signals): void {
  const status = EXIT_STATUS[sig] ?? 1;
  if (received) exitNow(status);
  received = sig;
  process.exitCode = status;
  try {
    onInterrupt?.();
  } catch {
    /* the progress display is best effort */
  }
  cancel(`interrupted by ${sig}`);
  const timer = setTimeout(() => {
    process.stderr.write(`imgtool: ${sig}: the command did not stop within ${WIND_DOWN_MS / 1000} s; exiting\n`);
    exitNow(status);
  }, WIND_DOWN_MS);
  void settled.then(() => {
    clearTimeout(timer);
    exitNow(status);
  });
}

/** Install the handlers (once per process); `interrupted` runs on the first signal (stop progress bars). */
export function installSignalHandlers(interrupted?: () => void): void {
  onInterrupt = interrupted;
  if (installed) return;
  installed = true;
  for (const sig of Object.keys(EXIT_STATUS) as NodeJS.Signals[]) process.on(sig, handle);
}

/** The command has finished (its error printed, its store closed): an interrupted process may exit now. */
export function commandSettled(): void {
  settle();
}
