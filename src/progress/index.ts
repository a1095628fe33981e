/**
 * Progress reporting. Library operations take an optional `Progress` and report
 * byte counts per task; the CLI renders them with cli-progress on a TTY.
 */
export interface Progress {
  /** Begin a task; `total` in bytes when known. Returns a handle. */
  task(label: string, total?: number): ProgressTask;
  /** A warning for the user (stderr in the CLI). */
  warn(message: string): void;
}

export interface ProgressTask {
  update(done: number, total?: number): void;
  finish(): void;
}

const noopTask: ProgressTask = { update() {}, finish() {} };

export const silentProgress: Progress = {
  task: () => noopTask,
  warn: () => {},
};

/** Progress that only forwards warnings (e.g. to stderr) — for non-TTY and --quiet. */
export function warningsOnly(warn: (m: string) => void): Progress {
  return { task: () => noopTask, warn };
}
