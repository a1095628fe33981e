import { Metadata } from '../metadata';
import { Descriptor } from './types';
import { NotFoundError } from '../errors';
import { normalizeReference } from '../reference';
import { ResourceHolder } from '../content';

export interface ImageRecord {
  name: string;
  target: Descriptor;
  createdAt: number;
  updatedAt: number;
}

interface Row {
  name: string;
  media_type: string;
  digest: string;
  size: number;
  annotations: string | null;
  created_at: number;
  updated_at: number;
}

function fromRow(r: Row): ImageRecord {
  const target: Descriptor = { mediaType: r.media_type, digest: r.digest, size: r.size };
  if (r.annotations) target.annotations = JSON.parse(r.annotations);
  return { name: r.name, target, createdAt: r.created_at, updatedAt: r.updated_at };
}

/** Image names -> target descriptors (an index or a manifest). */
export class ImageStore {
  constructor(private readonly meta: Metadata) {}

  get(name: string): ImageRecord | undefined {
    const r = this.meta.db.prepare('SELECT * FROM images WHERE name = ?').get(name) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Look up by user input: normalised name, or a digest/`name@digest` pinned name. */
  resolve(input: string): ImageRecord {
    const exact = this.get(input);
    if (exact) return exact;
    let norm: string | undefined;
    try {
      norm = normalizeReference(input);
    } catch {
      /* fall through */
    }
    if (norm) {
      const r = this.get(norm);
      if (r) return r;
    }
    if (/^(sha256:)?[a-f0-9]{12,64}$/.test(input)) {
      const hex = input.replace(/^sha256:/, '');
      const rows = (this.meta.db.prepare("SELECT * FROM images WHERE substr(digest, 8, ?) = ? ORDER BY name").all(hex.length, hex) as Row[]).map(fromRow);
      if (rows.length) return rows[0];
    }
    throw new NotFoundError(`image ${JSON.stringify(input)} not found${norm && norm !== input ? ` (as ${norm})` : ''}`);
  }

  list(): ImageRecord[] {
    return (this.meta.db.prepare('SELECT * FROM images ORDER BY name').all() as Row[]).map(fromRow);
  }

  /** Names that point at `digest`. */
  namesFor(digest: string): string[] {
    return (this.meta.db.prepare('SELECT name FROM images WHERE digest = ? ORDER BY name').all(digest) as Array<{ name: string }>).map((r) => r.name);
  }

  /** Create or move a name. Joins the caller's transaction if there is one. */
  put(name: string, target: Descriptor, lease?: ResourceHolder): ImageRecord {
    const now = Date.now();
    return this.meta.write(() => {
      this.meta.db
        .prepare(
          `INSERT INTO images (name, media_type, digest, size, annotations, created_at, updated_at)
           VALUES (@name, @mt, @digest, @size, @ann, @now, @now)
           ON CONFLICT(name) DO UPDATE SET media_type = excluded.media_type, digest = excluded.digest,
             size = excluded.size, annotations = excluded.annotations, updated_at = excluded.updated_at`,
        )
        .run({ name, mt: target.mediaType, digest: target.digest, size: target.size, ann: target.annotations ? JSON.stringify(target.annotations) : null, now });
      lease?.attach('image', name);
      return this.get(name)!;
    });
  }

  delete(name: string): boolean {
    return this.meta.write(() => this.meta.db.prepare('DELETE FROM images WHERE name = ?').run(name).changes > 0);
  }
}
