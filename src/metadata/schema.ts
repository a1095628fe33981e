/**
 * Schema migrations, applied in order inside one transaction each. Never edit a
 * migration that has shipped: append a new one.
 *
 * Tables by concept:
 *  - blobs, content_labels          content store index and labels (src/content)
 *  - images                         name -> target descriptor (src/images)
 *  - variants                       PROVEN blobs of a layer, keyed by blob digest (src/compression): a row
 *                                   exists only after imgtool hashed the blob's decompressed bytes to diff_id
 *  - variant_claims                 unproven blob -> diffID claims (rows of stores written before proofs);
 *                                   never read by retention or as a source of layers until proven
 *  - snapshots                      unpacked layers keyed by chainID with parent (src/snapshots)
 *  - snapshot_content (view)        every blob known for a snapshot = the variants of its diffID
 *  - leases, lease_resources        GC roots held by users and running processes (src/leases)
 *  - blob_sources                   registry + repository each blob was pulled from or pushed to: a hint
 *                                   for cross-repository mounts on push (src/registry); never trusted for content
 */
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
  );
  CREATE TABLE content_labels (
    digest  TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (digest, key)
  );
  CREATE TABLE images (
    name        TEXT PRIMARY KEY,
    media_type  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    annotations TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
  );
  CREATE INDEX images_digest ON images(digest);
  CREATE TABLE variants (
    digest         TEXT PRIMARY KEY,
    diff_id        TEXT NOT NULL,
    compression    TEXT NOT NULL CHECK (compression IN ('none','gzip','zstd')),
    size           INTEGER NOT NULL,
    media_type     TEXT,
    level          INTEGER,
    codec_version  TEXT,
    created_at     INTEGER NOT NULL
  );
  CREATE INDEX variants_diff_id ON variants(diff_id);
  CREATE TABLE snapshots (
    chain_id     TEXT PRIMARY KEY,
    parent       TEXT,
    diff_id      TEXT NOT NULL,
    size         INTEGER NOT NULL DEFAULT 0,
    reproducible INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
  );
  CREATE INDEX snapshots_parent ON snapshots(parent);
  CREATE INDEX snapshots_diff_id ON snapshots(diff_id);
  CREATE VIEW snapshot_content AS
    SELECT s.chain_id AS chain_id, v.digest AS digest, v.media_type AS media_type, v.compression AS compression
    FROM snapshots s JOIN variants v ON v.diff_id = s.diff_id;
  CREATE TABLE leases (
    id          TEXT PRIMARY KEY,
    labels      TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    pid         INTEGER,
    pid_start   TEXT
  );
  CREATE TABLE lease_resources (
    lease_id  TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('content','snapshot','image')),
    ref       TEXT NOT NULL,
    PRIMARY KEY (lease_id, kind, ref)
  );
  CREATE INDEX lease_resources_ref ON lease_resources(kind, ref);
  `,
  // 2: variant rows become proofs. Rows written before this migration may come from an
  // archive's (untrusted) config: they are moved to variant_claims and proven again lazily
  // (first use, or fsck). An uncompressed blob whose digest is its diffID proves itself.
  `
  CREATE TABLE variant_claims (
    digest         TEXT NOT NULL,
    diff_id        TEXT NOT NULL,
    compression    TEXT NOT NULL CHECK (compression IN ('none','gzip','zstd')),
    size           INTEGER NOT NULL,
    media_type     TEXT,
    level          INTEGER,
    codec_version  TEXT,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (digest, diff_id)
  );
  CREATE INDEX variant_claims_diff_id ON variant_claims(diff_id);
  INSERT OR IGNORE INTO variant_claims (digest, diff_id, compression, size, media_type, level, codec_version, created_at)
    SELECT digest, diff_id, compression, size, media_type, level, codec_version, created_at FROM variants
    WHERE NOT (compression = 'none' AND digest = diff_id);
  DELETE FROM variants WHERE NOT (compression = 'none' AND digest = diff_id);
  DELETE FROM content_labels WHERE key = 'containerd.io/uncompressed' AND digest NOT IN (SELECT digest FROM variants);
  `,
  // 3: where blobs came from / went to on a registry (src/registry), for cross-repository mounts.
  `
  CREATE TABLE blob_sources (
    digest      TEXT NOT NULL,
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (digest, registry, repository)
  );
  `,
];
