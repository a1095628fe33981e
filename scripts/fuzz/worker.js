'use strict';
/**
 * A long-lived fuzz worker (forked by ./pool.js). It loads the built library once and runs
 * one case per IPC message, calling the library entry points the commands call:
 *
 *   verify / verify --strict   verifyArchive          ls-archive   listArchive
 *   load / load --no-unpack    loadArchive (in a command lease, as commands/load.ts)
 *   unpack / export-rootfs / save: load --no-unpack first, then unpackImage / exportRootfs / saveImages
 *
 * and then checks the post-conditions, inside the case's own directory
 * (store/, cwd/, home/, tmp/, out/): the error (if any) is an ImgtoolError whose message and
 * details are clear lines (./check.js); a failure registered no image; no lease is left;
 * no temp file is left in the store; nothing appeared in cwd, HOME or TMPDIR (and nothing in
 * out/ on failure); `fsck` finds no error; a saved archive verifies. The watchdog and the
 * memory measurement are the parent's job: a synchronous loop here cannot be interrupted.
 */
const fs = require('node:fs');
const path = require('node:path');
const { classifyError, unclearReason } = require('./check');

const DIST = process.env.IMGTOOL_FUZZ_DIST || path.resolve(__dirname, '..', '..', 'dist');
const L = require(path.join(DIST, 'src', 'index.js'));

let current;
function crash(kind, e) {
  try {
    process.send({ type: 'crash', id: current, kind, message: String(e && e.stack ? e.stack : e).slice(0, 2000) });
  } finally {
    setTimeout(() => process.exit(70), 50);
  }
}
process.on('uncaughtException', (e) => crash('uncaughtException', e));
process.on('unhandledRejection', (e) => crash('unhandledRejection', e));

function listTree(dir, out = [], base = dir) {
  let names;
  try {
    names = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const d of names) {
    const p = path.join(dir, d.name);
    out.push(path.relative(base, p));
    if (d.isDirectory()) listTree(p, out, base);
  }
  return out;
}

const imageNames = (store) => store.images.list().map((r) => r.name).sort();

async function runCase(m) {
  const { file, command, dir } = m;
  const d = { store: path.join(dir, 'store'), cwd: path.join(dir, 'cwd'), home: path.join(dir, 'home'), tmp: path.join(dir, 'tmp'), out: path.join(dir, 'out') };
  for (const x of [d.cwd, d.home, d.tmp, d.out]) fs.mkdirSync(x, { recursive: true });
  process.chdir(d.cwd);
  process.env.HOME = d.home;
  process.env.TMPDIR = d.tmp;
  process.env.IMGTOOL_ROOT = d.store;
  const ctx = { storeRoot: d.store, tmpDirs: [d.tmp] };
  const failures = [];
  const fail = (cls, detail) => failures.push({ class: cls, detail: String(detail).slice(0, 500) });
  const res = { stage: command, outcome: 'ok' };
  const usesStore = !command.startsWith('verify') && command !== 'ls-archive';
  let store;
  let before = [];
  const checkLines = (what, lines) => {
    for (const l of lines) {
      const r = unclearReason(l, ctx);
      if (r) return fail('unclear-problem', `${what} ${r}: ${String(l).slice(0, 300)}`);
    }
  };
  try {
    if (command.startsWith('verify')) {
      const strict = command === 'verify --strict';
      const r = await L.verifyArchive(file, { strict, diffIds: strict });
      res.outcome = r.ok ? 'ok' : 'problems';
      res.problems = r.problems.slice(0, 5);
      checkLines('problem', r.problems);
      checkLines('warning', r.warnings);
    } else if (command === 'ls-archive') {
      const r = await L.listArchive(file);
      res.outcome = r.problems.length ? 'problems' : 'ok';
      res.problems = r.problems.slice(0, 5);
      checkLines('problem', r.problems);
      checkLines('warning', r.warnings);
    } else {
      store = L.Store.open(d.store);
      before = imageNames(store);
      const unpack = command === 'load';
      res.stage = unpack ? 'load' : 'load --no-unpack';
      const loaded = await L.withCommandLease(store, undefined, (lease) => L.loadArchive(store, file, { unpack, lease }));
      checkLines('warning', loaded.warnings);
      const names = loaded.images.map((i) => i.names[0]).filter(Boolean);
      if (['unpack', 'export-rootfs', 'save'].includes(command)) {
        before = imageNames(store);
        res.stage = command;
        if (command === 'unpack') {
          for (const n of names) await L.withCommandLease(store, undefined, (lease) => L.unpackImage(store, n, { lease }));
        } else if (command === 'export-rootfs') {
          for (const n of names) await L.withCommandLease(store, undefined, (lease) => L.exportRootfs(store, n, { output: path.join(d.out, `rootfs-${names.indexOf(n)}.tar`) }, { lease }));
        } else if (names.length) {
          const output = path.join(d.out, 'saved.tar');
          await L.withCommandLease(store, undefined, (lease) => L.saveImages(store, names, { output, lease }));
          // The promise of save: exactly the bytes its manifests name (digests). A layer that does
          // not match its own config's diffID was loaded that way (--no-unpack) and travels as is;
          // fsck reports such an image as image-invalid.
          const v = await L.verifyArchive(output, { strict: false });
          if (!v.ok) fail('save-invalid', `saved archive does not verify: ${v.problems[0]}`);
        }
      }
    }
  } catch (e) {
    const c = classifyError(e, L.isImgtoolError, ctx);
    res.outcome = 'error';
    res.error = { name: c.name, code: c.code, message: c.message.slice(0, 1000), details: c.details.slice(0, 5) };
    if (c.problem) fail(c.problem.class, `${res.stage}: ${c.problem.detail}`);
    if (store) {
      try {
        const after = imageNames(store);
        const added = after.filter((n) => !before.includes(n));
        if (added.length) fail('registered-on-failure', `${res.stage} failed but registered ${added.join(', ')}`);
      } catch (e2) {
        fail('post-check', `images list: ${e2.message}`);
      }
    }
    const left = listTree(d.out);
    if (left.length) fail('output-left', `${res.stage} failed but left ${left.join(', ')}`);
  }
  // post-conditions that hold whatever the outcome
  try {
    if (store) {
      const leases = store.leases.list();
      if (leases.length) fail('lease-left', `${leases.length} lease(s) left: ${leases.map((l) => l.id).join(', ')}`);
      const temps = [...listTree(path.join(d.store, 'content', 'ingest')).map((p) => `content/ingest/${p}`), ...listTree(path.join(d.store, 'snapshots', 'tmp')).map((p) => `snapshots/tmp/${p}`)];
      if (temps.length) fail('leftover-temp', `${temps.length} temp file(s) left in the store: ${temps.slice(0, 3).join(', ')}`);
      // Damage, not faithful reports about the input: an image loaded with --no-unpack whose layer
      // contradicts its config is reported by fsck as image-invalid (the store holds what it was given).
      const f = await L.fsck(store);
      const damage = f.problems.filter((p) => p.severity === 'error' && p.kind !== 'image-invalid');
      if (damage.length) fail('fsck-damage', `fsck: ${damage.length} error(s); first: ${damage[0].message}`);
    }
  } catch (e) {
    fail('post-check', `fsck threw ${e && e.name}: ${e && e.message}`);
  } finally {
    try {
      store?.close();
    } catch {}
  }
  for (const [what, x] of [['cwd', d.cwd], ['HOME', d.home], ['TMPDIR', d.tmp]]) {
    const w = listTree(x);
    if (w.length) fail('outside-write', `wrote into ${what}: ${w.slice(0, 3).join(', ')}`);
  }
  process.chdir(dir);
  return { ...res, failures };
}

process.on('message', (m) => {
  if (m.type !== 'case') return;
  current = m.id;
  runCase(m).then(
    (r) => process.send({ type: 'result', id: m.id, ...r }),
    (e) => crash('harness', e),
  );
});
process.send({ type: 'ready' });
