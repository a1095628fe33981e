import {
  parseImagesLs, parseContentLs, parseImagesCheck, parseLabels, reachableBlobs, parseSnapshotter,
  splitTomlKey, parseTomlFlat,
} from '../../../src/kind/ctr';

const D = (c: string) => 'sha256:' + c.repeat(64).slice(0, 64);

// Captured from ctr 1.6.20 (column padding shortened where it does not matter).
const IMAGES_LS = `REF                                                                                       TYPE                                    DIGEST                                                                  SIZE    PLATFORMS               LABELS 
docker.io/library/x:1                                                                     application/vnd.oci.image.index.v1+json ${D('a')} 1.5 KiB linux/amd64,linux/arm64 -      
import-2026-11-23@${D('a')} application/vnd.oci.image.index.v1+json ${D('a')} 1.5 KiB linux/amd64,linux/arm64 io.cri-containerd.pinned=pinned
registry.k8s.io/pause:3.9                                                                 application/vnd.docker.distribution.manifest.list.v2+json ${D('b')} 2.2 KiB linux/amd64 -
`;

const CONTENT_LS =
  'DIGEST\t\t\t\t\t\t\t\t\tSIZE\tAGE\t\tLABELS\n' +
  `${D('a')}\t517B\tAbout a minute\tcontainerd.io/gc.ref.content.m.1=${D('2')},containerd.io/gc.ref.content.m.0=${D('1')}\n` +
  `${D('1')}\t578B\tLess than a second\tcontainerd.io/gc.ref.content.config=${D('c')},containerd.io/gc.ref.content.l.1=${D('e')},containerd.io/gc.ref.content.l.0=${D('f')}\n` +
  `${D('2')}\t578B\t2 minutes\tcontainerd.io/gc.ref.content.config=${D('9')},containerd.io/gc.ref.content.l.0=${D('f')},containerd.io/distribution.source.docker.io=library/x,library/y\n` +
  `${D('c')}\t248B\t2 minutes\tcontainerd.io/gc.ref.snapshot.overlayfs=${D('5')}\n` +
  `${D('f')}\t103B\t2 minutes\tcontainerd.io/uncompressed=${D('6')}\n` +
  `${D('7')}\t103 KiB\t2 minutes\t-\n`;

const CHECK = `REF                                                                                       TYPE                                    DIGEST                                                                  STATUS           SIZE            UNPACKED 
docker.io/library/x:1                                                                     application/vnd.oci.image.index.v1+json ${D('a')} incomplete (2/3) 351.0 B/458.0 B false
docker.io/library/y:1                                                                     application/vnd.oci.image.index.v1+json ${D('b')} complete (3/3) 458.0 B/458.0 B true
docker.io/library/armidx:1  application/vnd.oci.image.index.v1+json    ${D('c')} unavailable (0/?) 0.0 B/?         false
`;

describe('ctr output parsers', () => {
  it('parses images ls', () => {
    const imgs = parseImagesLs(IMAGES_LS);
    expect(imgs).toEqual([
      { name: 'docker.io/library/x:1', mediaType: 'application/vnd.oci.image.index.v1+json', digest: D('a') },
      { name: `import-2026-11-23@${D('a')}`, mediaType: 'application/vnd.oci.image.index.v1+json', digest: D('a') },
      { name: 'registry.k8s.io/pause:3.9', mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', digest: D('b') },
    ]);
    expect(parseImagesLs('REF TYPE DIGEST SIZE PLATFORMS LABELS\n')).toEqual([]);
    expect(parseImagesLs('')).toEqual([]);
  });

  it('parses content ls with labels (values holding commas, empty labels)', () => {
    const blobs = parseContentLs(CONTENT_LS);
    expect(blobs.map((b) => b.digest)).toEqual([D('a'), D('1'), D('2'), D('c'), D('f'), D('7')]);
    expect(blobs[0].labels).toEqual({ 'containerd.io/gc.ref.content.m.1': D('2'), 'containerd.io/gc.ref.content.m.0': D('1') });
    expect(blobs[2].labels['containerd.io/distribution.source.docker.io']).toBe('library/x,library/y');
    expect(blobs[2].labels['containerd.io/gc.ref.content.l.0']).toBe(D('f'));
    expect(blobs[5].labels).toEqual({});
    expect(parseLabels('-')).toEqual({});
    expect(parseLabels('a=b=c,d=')).toEqual({ a: 'b=c', d: '' });
  });

  it('parses images check', () => {
    const c = parseImagesCheck(CHECK);
    expect(c).toEqual([
      { name: 'docker.io/library/x:1', mediaType: 'application/vnd.oci.image.index.v1+json', digest: D('a'), status: 'incomplete', complete: false, present: 2, total: 3, unpacked: false },
      { name: 'docker.io/library/y:1', mediaType: 'application/vnd.oci.image.index.v1+json', digest: D('b'), status: 'complete', complete: true, present: 3, total: 3, unpacked: true },
      { name: 'docker.io/library/armidx:1', mediaType: 'application/vnd.oci.image.index.v1+json', digest: D('c'), status: 'unavailable', complete: false, unpacked: false },
    ]);
  });

  it('reachable blobs follow gc.ref.content labels from image targets, only blobs present', () => {
    const imgs = parseImagesLs(IMAGES_LS);
    const blobs = parseContentLs(CONTENT_LS);
    const r = reachableBlobs(imgs, blobs);
    // a → 1, 2; 1 → c, e (absent), f; 2 → 9 (absent), f. b (pause) is not present. 7 is unreferenced.
    expect([...r].sort()).toEqual([D('1'), D('2'), D('a'), D('c'), D('f')].sort());
    expect(r.has(D('7'))).toBe(false);
    expect(r.has(D('e'))).toBe(false);
    // No image: nothing is safe to omit.
    expect(reachableBlobs([], blobs).size).toBe(0);
  });
});

describe('snapshotter from containerd config dump', () => {
  it('version 2: plugins."io.containerd.grpc.v1.cri".containerd.snapshotter', () => {
    const dump = `disabled_plugins = []
imports = []
oom_score = 0
root = "/var/lib/containerd"
version = 2

[plugins]

  [plugins."io.containerd.gc.v1.scheduler"]
    deletion_threshold = 0

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      discard_unpacked_layers = true
      snapshotter = "native"   # a comment

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        snapshotter = "zfs"

  [plugins."io.containerd.snapshotter.v1.overlayfs"]
    root_path = ""
`;
    expect(parseSnapshotter(dump)).toBe('native');
  });

  it('version 3: plugins."io.containerd.cri.v1.images".snapshotter', () => {
    const dump = `version = 3
root = '/var/lib/containerd'

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'fuse-overlayfs'
    disable_snapshot_annotations = true

  [plugins.'io.containerd.cri.v1.runtime']
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
`;
    expect(parseSnapshotter(dump)).toBe('fuse-overlayfs');
    expect(parseSnapshotter(dump.replace('version = 3', 'version = 4'))).toBe('fuse-overlayfs');
  });

  it('version 1 and defaults', () => {
    expect(parseSnapshotter('[plugins.cri.containerd]\n  snapshotter = "btrfs"\n')).toBe('btrfs');
    expect(parseSnapshotter('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = ""\n')).toBe('overlayfs');
    expect(parseSnapshotter('')).toBe('overlayfs');
    // version 2 without the key: the v3 location is not used by mistake when v2's exists elsewhere
    expect(parseSnapshotter('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  x = 1\n')).toBe('overlayfs');
  });

  it('splits dotted TOML keys with quotes', () => {
    expect(splitTomlKey(`plugins."io.containerd.grpc.v1.cri".containerd`)).toEqual(['plugins', 'io.containerd.grpc.v1.cri', 'containerd']);
    expect(splitTomlKey(`plugins . 'a.b' . c`)).toEqual(['plugins', 'a.b', 'c']);
    const t = parseTomlFlat('a = "x=y # not a comment" # comment\n[t."u.v"]\nk = 5\n[[arr]]\nk = 6\n');
    expect(t.get('a')).toBe('x=y # not a comment');
    expect(t.get('t\0u.v\0k')).toBe(5);
    expect(t.get('arr\0k')).toBeUndefined();
  });
});
