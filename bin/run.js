#!/usr/bin/env node
'use strict';
// oclif's per-module entry: `require('@oclif/core')` would also load every other oclif module
// and check the Node version with semver (package.json `engines` states it already).
const { execute } = require('@oclif/core/execute');
execute({ dir: __dirname }).catch((err) => {
  process.stderr.write(`imgtool: ${err && err.message ? err.message : String(err)}\n`);
  process.exitCode = process.exitCode || 1;
});
