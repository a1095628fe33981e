import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MIGRATIONS } from './schema';
import { ImgtoolError } from '../errors';

export type Db = Database.Database;

/**
 * The metadata database: one SQLite file per store, in WAL mode so several imgtool
 * processes can read while one writes. Writers take the database write lock with
 * `BEGIN IMMEDIATE` (see `write`); that lock is also what serialises blob commits
 * against prune.
 */
export class Metadata {
  readonly db: Db;
  private readonly statements = new Map<string, Database.Statement>();
  private constructor(db: Db) {
    this.db = db;
  }

  /**
   * A prepared statement for `sql`, prepared once per database: preparing costs more than
   * running a point query, and listings run thousands of them.
   */
  stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  static open(file: string, opts: { readonly?: boolean } = {}): Metadata {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const db = new Database(file, { readonly: !!opts.readonly, timeout: 60_000 });
    try {
      db.pragma('busy_timeout = 60000');
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        // FULL: WAL commits are fsynced, so a command that reported success survives power loss.
        db.pragma('synchronous = FULL');
      }
      db.pragma('foreign_keys = ON');
      const m = new Metadata(db);
      if (!opts.readonly) m.migrate();
      return m;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  static openMemory(): Metadata {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    const m = new Metadata(db);
    m.migrate();
    return m;
  }

  get schemaVersion(): number {
    const row = this.db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
    return row?.version ?? 0;
  }

  /** The stored schema version by a plain read (no lock); undefined when the database has no schema yet. */
  private storedVersion(): number | undefined {
    const table = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
    if (!table) return undefined;
    const row = this.db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
    return row?.version;
  }

  private static tooNew(v: number): ImgtoolError {
    return new ImgtoolError('PRECONDITION', `store schema version ${v} is newer than this imgtool supports (${MIGRATIONS.length}); upgrade imgtool`);
  }

  /**
   * Bring the schema up to date. An up-to-date store (every open but the first after an
   * upgrade) is only read: read-only commands never wait for the write lock. Only when a
   * migration is due is `BEGIN IMMEDIATE` taken, and the version re-read under it (another
   * process may have migrated meanwhile).
   */
  private migrate(): void {
    const seen = this.storedVersion();
    if (seen !== undefined && seen > MIGRATIONS.length) throw Metadata.tooNew(seen);
    if (seen === MIGRATIONS.length) return;
    this.write(() => {
      this.db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
      const row = this.db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
      let v = row?.version ?? 0;
      if (!row) this.db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
      if (v > MIGRATIONS.length) throw Metadata.tooNew(v);
      for (; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]);
      this.db.prepare('UPDATE schema_version SET version = ?').run(v);
    });
  }

  /** Run `fn` in a `BEGIN IMMEDIATE` transaction (takes the write lock up front). Nested calls join the outer one. */
  write<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    return this.db.transaction(fn).immediate();
  }

  /** Run `fn` in a deferred (read) transaction for a consistent snapshot of several reads. */
  read<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    return this.db.transaction(fn).deferred();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

export { MIGRATIONS };
