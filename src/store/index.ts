import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { Metadata } from '../metadata';
import { ContentStore } from '../content';
import { ImageStore } from '../images/store';
import { VariantStore } from '../compression/variants';
import { LeaseManager } from '../leases';
import { SnapshotStore } from '../snapshots/store';

/** `--root` default: `$IMGTOOL_ROOT`, else `~/.local/share/imgtool`. */
export function defaultRoot(): string {
  return process.env.IMGTOOL_ROOT || path.join(os.homedir(), '.local', 'share', 'imgtool');
}

/**
 * A local image store: content blobs, metadata database and the per-concept stores
 * over them. Open one per process; it is safe to have several processes on one root.
 */
export class Store {
  readonly root: string;
  readonly meta: Metadata;
  readonly content: ContentStore;
  readonly images: ImageStore;
  readonly variants: VariantStore;
  readonly leases: LeaseManager;
  readonly snapshots: SnapshotStore;

  private constructor(root: string, meta: Metadata) {
    this.root = root;
    this.meta = meta;
    this.content = new ContentStore(root, meta);
    this.images = new ImageStore(meta);
    this.variants = new VariantStore(meta, this.content);
    this.leases = new LeaseManager(meta, root);
    this.snapshots = new SnapshotStore(root, meta);
  }

  /**
   * Open (creating if needed) the store at `root`. Opening an up-to-date store only reads
   * (`schema_version` by a plain read): it never waits for the write lock, so read-only
   * commands answer while a prune or load holds it. A migration, when due, takes the lock.
   */
  static open(root: string = defaultRoot()): Store {
    const abs = path.resolve(root);
    fs.mkdirSync(abs, { recursive: true });
    return new Store(abs, Metadata.open(path.join(abs, 'metadata.db')));
  }

  close(): void {
    this.meta.close();
  }
}
