/**
 * Process-wide cancellation. The CLI calls `cancel()` on SIGINT/SIGTERM (src/cli/signals.ts);
 * library code never listens to signals itself. Instead:
 * - write and read loops call `throwIfCancelled(what)` (archive outputs, content writers) and
 *   long copies take `cancelSignal()`; streams read from the store are wrapped by
 *   `cancellable()`. The running operation then fails with a `CancelledError` and its own
 *   error paths undo what it did: temp files removed, names put back, leases released.
 * - `addCleanup(fn)` registers a last-resort *synchronous* cleanup (remove a temp file, put
 *   names back) for as long as the thing exists; the CLI runs the remaining ones only when
 *   the operation has not wound down in time (or on a second signal), right before exiting.
 * One cancellation per process: a CLI process runs one command.
 */
import { Readable } from 'node:stream';
import { CancelledError } from '../errors';

const controller = new AbortController();
let reason: CancelledError | undefined;
const cleanups = new Set<() => void>();

/** Aborted once `cancel()` has been called; its reason is the CancelledError. */
export function cancelSignal(): AbortSignal {
  return controller.signal;
}

export function isCancelled(): boolean {
  return reason !== undefined;
}

/** Once cancelled, the CancelledError to fail with (`<what>: <reason>`); else undefined. */
export function cancelledError(what?: string): CancelledError | undefined {
  if (!reason) return undefined;
  return what ? new CancelledError(`${what}: ${reason.message}`) : reason;
}

/** Throw a CancelledError (`<what>: <reason>`) once cancelled. */
export function throwIfCancelled(what?: string): void {
  const e = cancelledError(what);
  if (e) throw e;
}

/** Cancel every running operation of this process (idempotent; the first reason wins). */
export function cancel(message: string): void {
  if (reason) return;
  reason = new CancelledError(message);
  controller.abort(reason);
}

/** Destroy `stream` with the CancelledError when cancelled (now, if already). */
export function cancellable<T extends Readable>(stream: T, what?: string): T {
  const signal = controller.signal;
  const onAbort = () => {
    if (!stream.destroyed) stream.destroy(cancelledError(what));
  };
  if (signal.aborted) {
    onAbort();
    return stream;
  }
  signal.addEventListener('abort', onAbort, { once: true });
  stream.once('close', () => signal.removeEventListener('abort', onAbort));
  return stream;
}

/** Register a synchronous last-resort cleanup; returns the function that unregisters it. */
export function addCleanup(fn: () => void): () => void {
  const entry = () => fn();
  cleanups.add(entry);
  return () => {
    cleanups.delete(entry);
  };
}

/** Run (newest first) and forget every registered cleanup; errors are ignored. */
export function runCleanups(): void {
  const all = [...cleanups].reverse();
  cleanups.clear();
  for (const fn of all) {
    try {
      fn();
    } catch {
      /* best effort: the process is about to exit */
    }
  }
}

/** Number of registered cleanups (for tests). */
export function pendingCleanups(): number {
  return cleanups.size;
}
