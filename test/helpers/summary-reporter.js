// Prints one plain closing line ("tests: N passed, N failed, N skipped") after jest's own
// summary, so CI logs state the counts in a runner-neutral form.
//
// A test that returned early because a peer tool is missing (test/helpers/peers.ts
// `requirePeer`) passed as far as jest knows; it is counted here as skipped. `requirePeer`
// appends such tests (file + full name) to the file named by $IMGTOOL_PEER_SKIPS, which this
// reporter creates before the tests start (test workers inherit the environment).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

class SummaryReporter {
  constructor() {
    this.log = path.join(os.tmpdir(), `imgtool-peer-skips-${process.pid}-${Date.now()}.jsonl`);
    fs.writeFileSync(this.log, '');
    process.env.IMGTOOL_PEER_SKIPS = this.log;
  }

  /** Keys (file\0full name) of the tests that skipped themselves for a missing peer. */
  peerSkips() {
    const keys = new Set();
    let text = '';
    try {
      text = fs.readFileSync(this.log, 'utf8');
    } catch {
      return keys;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const r = JSON.parse(line);
        keys.add(`${r.file}\0${r.test}`);
      } catch {
        /* a torn line of an interrupted worker */
      }
    }
    return keys;
  }

  onRunComplete(_contexts, results) {
    const skips = this.peerSkips();
    let peerSkipped = 0;
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        if (t.status === 'passed' && skips.has(`${file.testFilePath}\0${t.fullName}`)) {
          peerSkipped++;
          process.stdout.write(`skipped for a missing peer tool: ${path.relative(process.cwd(), file.testFilePath)} › ${t.fullName}\n`);
        }
      }
    }
    fs.rmSync(this.log, { force: true });
    const passed = results.numPassedTests - peerSkipped;
    const skipped = results.numPendingTests + results.numTodoTests + peerSkipped;
    const why = peerSkipped ? ` (${peerSkipped} for a missing peer tool)` : '';
    process.stdout.write(`\ntests: ${passed} passed, ${results.numFailedTests} failed, ${skipped} skipped${why}\n`);
  }
}
module.exports = SummaryReporter;
