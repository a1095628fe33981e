'use strict';
// Shared by scripts/crash-test.js and scripts/concurrency-test.js: a seeded PRNG and a runner
// for the built imgtool CLI (with an optional SIGKILL after a delay).
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const REPO = path.resolve(__dirname, '..', '..');
const BIN = path.join(REPO, 'bin', 'run.js');
const DIST = path.join(REPO, 'dist');

/** mulberry32: small seeded PRNG. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hasCommand(name) {
  return fs.existsSync(path.join(DIST, 'commands', ...name.split(' ')) + '.js');
}

/** Run the CLI; with `killAfterMs`, SIGKILL it then unless it has exited. */
function run(args, { root, killAfterMs, stdoutFile } = {}) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, IMGTOOL_ROOT: root };
    delete env.FORCE_COLOR;
    const out = stdoutFile ? fs.openSync(stdoutFile, 'w') : 'pipe';
    const t0 = Date.now();
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', out, 'pipe'] });
    const so = [];
    const se = [];
    let killed = false;
    let timer;
    if (killAfterMs !== undefined) {
      timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) {
          killed = true;
          child.kill('SIGKILL');
        }
      }, killAfterMs);
    }
    child.stdout?.on('data', (d) => so.push(d));
    child.stderr.on('data', (d) => se.push(d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (typeof out === 'number') fs.closeSync(out);
      resolve({ code, signal, killed: killed && signal === 'SIGKILL', ms: Date.now() - t0, stdout: Buffer.concat(so).toString(), stderr: Buffer.concat(se).toString() });
    });
  });
}

module.exports = { REPO, BIN, DIST, prng, hasCommand, run };
