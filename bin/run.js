#!/usr/bin/env node
'use strict';
// The CLI entry. `--version` is answered here, loading nothing but package.json; every other
// command line goes to the dispatcher, which loads only the command it names (src/cli/dispatch.ts).
const argv = process.argv.slice(2);
if (argv[0] === '--version' || argv[0] === '-v') {
  const { version } = require('../package.json');
  process.stdout.write(`imgtool/${version} ${process.platform}-${process.arch} node-${process.version}\n`);
} else {
  require('../dist/src/cli/dispatch').main(argv);
}
