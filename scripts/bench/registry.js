'use strict';
/**
 * `npm run bench -- --only pull,push` (issue 13): imgtool against the local distribution registry
 * (Debian's docker-registry, plain HTTP flavour, scripts/peers/registry-up.sh, filesystem storage
 * in the bench's work dir), next to the peers and the physical floors, in the same run:
 *
 *   push            imgtool push of the bench image to an empty registry (fresh storage per run)
 *   push chunks     the same through the library with other upload chunk sizes (monolithic PUT
 *                   vs PATCH chunks: what chose UPLOAD_CHUNK_SIZE)
 *   re-push         the same push again: nothing to upload
 *   skopeo push     skopeo copy oci:DIR -> docker://… (fresh storage per run)
 *   curl PUT        the floor: POST + one monolithic curl PUT per blob (the registry's own ingest)
 *   pull            imgtool pull --no-unpack into an empty store (fsynced by imgtool)
 *   pull + unpack   imgtool pull (unpacks the host platform)
 *   re-pull         the same pull again: already complete
 *   skopeo pull     skopeo copy docker://… -> oci:DIR, then sync of the blobs
 *   curl GET        the floor: one curl GET per blob into files, then sync
 *
 * Targets printed: push >= skopeo's speed and <= 1.3x (curl PUT + start-up); pull >= 1.5x skopeo's
 * speed; re-push and re-pull < 0.5 s; peak RSS < 200 MB (the summary of bench.js).
 */
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

function freePort() {
  return Number(execFileSync(process.execPath, ['-e', "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"]).toString().trim());
}

/**
 * ctx (from bench.js): { REPO, BIN, info, NAME, OCI_DIR, OCI_TAR, work, R, row, ratio, bench, have, sh, q }
 */
function run(ctx) {
  const { REPO, BIN, info, NAME, OCI_DIR, OCI_TAR, work, R, row, ratio, bench, have, sh, q } = ctx;
  if (!have('docker-registry')) {
    console.log('\n== registry: docker-registry not installed (scripts/peers/install.sh); pull/push rows skipped');
    return;
  }
  const peers = path.join(REPO, 'scripts', 'peers');
  const regDir = path.join(work, 'registry');
  const port = freePort();
  const REG = `127.0.0.1:${port}`;
  const up = () => sh(`bash ${q(path.join(peers, 'registry-up.sh'))} ${q(regDir)} ${port} >/dev/null`);
  const down = () => spawnSync('bash', [path.join(peers, 'registry-down.sh'), regDir]);
  /** A registry with empty storage (not timed). */
  const freshRegistry = () => {
    down();
    fs.rmSync(path.join(regDir, 'data'), { recursive: true, force: true });
    up();
  };
  const src = path.join(work, 'reg-src');
  const dst = path.join(work, 'reg-dst');
  const skDir = path.join(work, 'reg-skopeo-oci');
  const curlDir = path.join(work, 'reg-curl');
  const freshDst = () => fs.rmSync(dst, { recursive: true, force: true });
  const blobs = [info.config, ...info.layers.map((l) => l.digest)].map((d) => ({ digest: d, file: path.join(OCI_DIR, 'blobs', 'sha256', d.slice(7)) }));
  const total = blobs.reduce((n, b) => n + fs.statSync(b.file).size, 0);
  const haveSkopeo = have('skopeo');
  const haveCurl = have('curl');
  try {
    up();
    sh(`IMGTOOL_ROOT=${q(src)} ${BIN} load --no-unpack -q -i ${q(OCI_TAR)} >/dev/null`);
    const env = { IMGTOOL_ROOT: src };
    const startup = row('registry', bench('node bin/run.js --version (start-up)', `${BIN} --version >/dev/null`, { runs: R }));
    console.log(`\n== push of the bench image (${(total / 1048576).toFixed(0)} MiB of blobs) to docker-registry on ${REG} (issue 13: >= skopeo's speed, <= 1.3x curl PUT + start-up)`);
    let floorPut;
    if (haveCurl) {
      // POST a session, PUT the whole blob to its Location (?digest=), for every blob.
      const put = blobs.map((b) => `loc=$(curl -sS -o /dev/null -D - -X POST http://${REG}/v2/bench/curl/blobs/uploads/ | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p'); ` +
        `case "$loc" in http*) ;; *) loc="http://${REG}$loc";; esac; ` +
        `curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -T ${q(b.file)} "$loc&digest=${b.digest}"`).join(' && ');
      floorPut = row('registry', bench('curl POST + monolithic PUT of every blob', put, { runs: R, prepare: freshRegistry }));
    }
    const push = row('registry', bench('imgtool push', `${BIN} push -q --insecure ${q(NAME)} ${REG}/bench/image:1 >/dev/null`, { runs: R, env, prepare: freshRegistry }));
    const repush = row('registry', bench('imgtool re-push (nothing to upload)', `${BIN} push -q --insecure ${q(NAME)} ${REG}/bench/image:1 >/dev/null`, { runs: R, env }));
    // Upload chunk sizes, through the library (the CLI has no flag for it).
    const lib = JSON.stringify(path.join(REPO, 'dist', 'src', 'index.js'));
    for (const [label, chunk] of [['monolithic PUT per blob', Number.MAX_SAFE_INTEGER], ['64 MiB PATCH chunks', 64 << 20], ['16 MiB PATCH chunks', 16 << 20]]) {
      const script = `const {Store,pushImage}=require(${lib});(async()=>{const s=Store.open(${JSON.stringify(src)});try{await pushImage(s,${JSON.stringify(NAME)},${JSON.stringify(`${REG}/bench/chunks:1`)},{insecure:true,chunkSize:${chunk}})}finally{s.close()}})().catch(e=>{console.error(e.message);process.exit(1)})`;
      row('registry', bench(`imgtool push (library, ${label})`, [process.execPath, '-e', script], { runs: R, prepare: freshRegistry }));
    }
    let skPush;
    if (haveSkopeo) {
      skPush = row('registry', bench('skopeo copy oci:DIR -> docker://', `skopeo copy -q --dest-tls-verify=false oci:${q(OCI_DIR)}:bench docker://${REG}/bench/skopeo:1 >/dev/null`, { runs: R, prepare: freshRegistry }));
      ratio('skopeo push / imgtool push (speed-up)', skPush, push, '>= 1');
    }
    if (floorPut) {
      const floor = { secs: floorPut.secs + startup.secs };
      ratio('imgtool push / (curl PUT + start-up)', push, floor, '<= 1.3');
    }
    ratio('imgtool re-push / 0.5 s', repush, { secs: 0.5 }, '< 1');

    // Pull: the registry holds the image as imgtool pushed it (same digests as the OCI layout).
    freshRegistry();
    sh(`IMGTOOL_ROOT=${q(src)} ${BIN} push -q --insecure ${q(NAME)} ${REG}/bench/image:1 >/dev/null`);
    console.log(`\n== pull of the bench image from docker-registry (issue 13: >= 1.5x skopeo's speed)`);
    let floorGet;
    if (haveCurl) {
      const get = `mkdir -p ${q(curlDir)} && ` + blobs.map((b) => `curl -sS -f -o ${q(path.join(curlDir, b.digest.slice(7)))} http://${REG}/v2/bench/image/blobs/${b.digest}`).join(' && ') + ` && sync ${q(curlDir)}/*`;
      floorGet = row('registry', bench('curl GET of every blob + sync', get, { runs: R, prepare: () => fs.rmSync(curlDir, { recursive: true, force: true }) }));
    }
    const pull = row('registry', bench('imgtool pull --no-unpack', `${BIN} pull -q --insecure --no-unpack ${REG}/bench/image:1 >/dev/null`, { runs: R, env: { IMGTOOL_ROOT: dst }, prepare: freshDst }));
    const repull = row('registry', bench('imgtool re-pull (already complete)', `${BIN} pull -q --insecure --no-unpack ${REG}/bench/image:1 >/dev/null`, { runs: R, env: { IMGTOOL_ROOT: dst } }));
    row('registry', bench('imgtool pull (+ unpack)', `${BIN} pull -q --insecure ${REG}/bench/image:1 >/dev/null`, { runs: R, env: { IMGTOOL_ROOT: dst }, prepare: freshDst }));
    if (haveSkopeo) {
      const skPull = row('registry', bench('skopeo copy docker:// -> oci:DIR + sync', `skopeo copy -q --src-tls-verify=false docker://${REG}/bench/image:1 oci:${q(skDir)}:bench >/dev/null && sync ${q(skDir)}/blobs/sha256/*`, { runs: R, prepare: () => fs.rmSync(skDir, { recursive: true, force: true }) }));
      ratio('skopeo pull / imgtool pull --no-unpack (speed-up)', skPull, pull, '>= 1.5');
    }
    if (floorGet) ratio('imgtool pull --no-unpack / (curl GET + sync)', pull, floorGet);
    ratio('imgtool re-pull / 0.5 s', repull, { secs: 0.5 }, '< 1');
  } finally {
    down();
    for (const d of [src, dst, skDir, curlDir, regDir]) fs.rmSync(d, { recursive: true, force: true });
  }
}

module.exports = { run };
