/**
 * CLI plumbing, imported by commands/ only (never by the library): the base command, Flags/Args
 * (the in-house command layer that replaced oclif: ./command.ts, ./flags.ts, ./parse.ts,
 * ./help.ts, ./dispatch.ts), progress bars, the table renderer and number formatting.
 */
export { ImgtoolCommand } from './base';
export type { BaseFlags, BaseArgs } from './base';
export { Flags, Args } from './flags';
export { terminalProgress, fmtBytes, fmtDuration, formatBar } from './progress';
export { renderTable } from './table';
export type { Column } from './table';
