/**
 * oclif, loaded through its per-module entries. `require('@oclif/core')` loads every oclif module
 * and runs a semver check of the Node version (~30 ms of start-up, more on a busy machine);
 * commands need only `Command`, `Flags` and `Args`. With `moduleResolution: node` TypeScript
 * does not read package.json `exports`, hence typed requires instead of `import … from`.
 * Only src/cli and commands/ use oclif; the library never does.
 */
import type * as OclifCommand from '@oclif/core/lib/command';
import type * as OclifFlags from '@oclif/core/lib/flags';
import type * as OclifArgs from '@oclif/core/lib/args';

export type { Interfaces } from '@oclif/core';

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const Command: typeof OclifCommand.Command = require('@oclif/core/command').Command;
export type Command = OclifCommand.Command;
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const Flags: typeof OclifFlags = require('@oclif/core/flags');
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const Args: typeof OclifArgs = require('@oclif/core/args');
