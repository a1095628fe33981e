#!/usr/bin/env node
'use strict';
const { execute } = require('@oclif/core');
execute({ dir: __dirname }).catch((err) => {
  process.stderr.write(`imgtool: ${err && err.message ? err.message : String(err)}\n`);
  process.exitCode = process.exitCode || 1;
});
