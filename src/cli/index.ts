/**
 * CLI plumbing, imported by commands/ only (never by the library): the oclif base command,
 * oclif's Flags/Args, progress bars, the table renderer and number formatting.
 */
export { ImgtoolCommand } from './base';
export type { BaseFlags, BaseArgs } from './base';
export { Flags, Args } from './oclif';
export { terminalProgress, fmtBytes, fmtDuration, formatBar } from './progress';
export { renderTable } from './table';
export type { Column } from './table';
