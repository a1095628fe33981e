#!/usr/bin/env node
'use strict';
// Write oclif.manifest.json after a build, so `imgtool CMD` loads only CMD's module instead of
// every command to discover them (startup time of every invocation). Run by `npm run build`.
const fs = require('node:fs');
const path = require('node:path');
const { Config } = require('@oclif/core');

(async () => {
  const root = path.resolve(__dirname, '..');
  const file = path.join(root, 'oclif.manifest.json');
  fs.rmSync(file, { force: true });
  const config = await Config.load({ root, ignoreManifest: true });
  const plugin = config.plugins.get(config.pjson.name);
  if (!plugin || !Object.keys(plugin.manifest.commands).length) throw new Error('no commands found under dist/commands (build first)');
  fs.writeFileSync(file, JSON.stringify(plugin.manifest, null, 1) + '\n');
  console.log(`oclif manifest: ${Object.keys(plugin.manifest.commands).length} commands`);
})().catch((e) => {
  console.error(`oclif-manifest: ${e.message}`);
  process.exit(1);
});
