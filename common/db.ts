import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { QueryTypes, Sequelize, Transaction, type QueryInterface } from 'sequelize';
import { BerthError } from './errors.js';
import { fsyncPath, makePrivateDirSync, makePrivateFileSync } from './fs.js';
import { Umzug, SequelizeStorage } from 'umzug';

/**
 * Opens a database from an oslo-style connection string: `sqlite:///ABS/PATH` (or `sqlite://` for
 * memory) for the embedded default, `postgres://user:pass@host:port/db` for the shared one.
 */
export function openDatabase(connection: string): Sequelize {
  if (connection.startsWith('sqlite:')) {
    const path = connection.replace(/^sqlite:(\/\/)?/, '') || ':memory:';
    const storage = path === '' || path === '/' ? ':memory:' : path;
    if (storage !== ':memory:') privateSqliteFiles(storage);
    // IMMEDIATE: a transaction takes the write lock up front (waiting for it) instead of failing
    // with SQLITE_BUSY when it upgrades from reading to writing under another writer.
    const db = new Sequelize({ dialect: 'sqlite', storage, logging: false, pool: { max: 1, min: 0 }, transactionType: Transaction.TYPES.IMMEDIATE });
    // sequelize opens one more SQLite connection per transaction, and a busy timeout is per
    // connection: give every connection one, not just the first.
    const cm = db.connectionManager as unknown as { getConnection(o?: unknown): Promise<{ configure(opt: 'busyTimeout', ms: number): void }> };
    const open = cm.getConnection.bind(cm);
    cm.getConnection = async (o) => {
      const c = await open(o);
      c.configure('busyTimeout', 5000);
      return c;
    };
    return db;
  }
  if (/^postgres(ql)?:\/\//.test(connection)) {
    return new Sequelize(connection.replace(/^postgresql:/, 'postgres:'), { dialect: 'postgres', logging: false, pool: { max: 10 } });
  }
  throw new Error(`unsupported database connection ${JSON.stringify(connection.replace(/\/\/[^@]*@/, '//***@'))}: use sqlite:///PATH or postgres://...`);
}

/**
 * The database holds user data, key data and image metadata: its folder is made 0700 when Berth
 * creates it, the database 0600 before SQLite opens it (its -wal and -shm files take that mode),
 * and files an older version left readable to others are narrowed.
 */
function privateSqliteFiles(storage: string): void {
  makePrivateDirSync(dirname(storage));
  makePrivateFileSync(storage);
  for (const extra of [`${storage}-wal`, `${storage}-shm`]) if (existsSync(extra)) makePrivateFileSync(extra);
}

/**
 * SQLite pragmas for durability with concurrency: WAL, busy timeout, and either a full fsync on
 * every commit or, with `groupCommit`, none at commit: the caller then makes its commits durable
 * with a DurabilityBarrier before it tells anyone about them.
 */
export async function tuneSqlite(db: Sequelize, opts: { groupCommit?: boolean } = {}): Promise<void> {
  if (db.getDialect() !== 'sqlite') return;
  await db.query('PRAGMA journal_mode=WAL');
  await db.query(`PRAGMA synchronous=${opts.groupCommit ? 'NORMAL' : 'FULL'}`);
  await db.query('PRAGMA busy_timeout=5000');
  await db.query('PRAGMA foreign_keys=ON');
}

/** Makes every commit made before the call durable; see durabilityBarrier. */
export type DurabilityBarrier = () => Promise<void>;

/** What one sync of the -wal file did: flushed it, found it as last flushed, or found none. */
export type WalSync = 'synced' | 'unchanged' | 'absent';

/**
 * Group commit for a database tuned with `groupCommit`. In WAL mode with synchronous=NORMAL a
 * commit is appended to the -wal file with write() and not synced: it survives a crash of this
 * process but not of the machine. The barrier syncs the -wal file once for every commit made so
 * far; callers arriving while a sync runs share it if it covers their writes, else the next one, so a hundred concurrent
 * operations pay for a few syncs instead of one per commit. PostgreSQL (durable at each commit)
 * and in-memory databases need nothing: their barrier does nothing.
 */
export function durabilityBarrier(db: Sequelize, opts: { onSync?: (outcome: WalSync) => void } = {}): DurabilityBarrier {
  const storage = (db as unknown as { options: { storage?: string } }).options.storage;
  if (db.getDialect() !== 'sqlite' || !storage || storage === ':memory:') return () => Promise.resolve();
  const wal = `${storage}-wal`;
  // Write queries completed, and how many of them the last finished sync covers: a caller that
  // wrote nothing since (a ping, a read) needs no sync at all.
  let written = 0;
  let synced = 0;
  const memo: WalMemo = { last: null };
  db.addHook('afterQuery', (options: { type?: string }) => {
    if (options.type !== 'SELECT') written++;
  });
  // A sync covers the writes completed before it began.
  const group = new GroupSync(
    async (upTo) => {
      const outcome = await syncWal(wal, memo);
      synced = Math.max(synced, upTo);
      try {
        opts.onSync?.(outcome);
      } catch {
        /* an observer's failure is not the sync's */
      }
    },
    () => written,
  );
  return () => (written <= synced ? Promise.resolve() : group.durable(written));
}

/**
 * Shares one run of `sync` among all callers that arrive before it starts. A caller arriving
 * while a run is under way waits for the next run, since the one under way may have started
 * before the caller's own commit, unless the run is known to cover it: `mark` says how far a run
 * starting now reaches (given to `sync` too), and a caller may say how far it needs (`need`).
 */
export class GroupSync {
  private running: { upTo: number; done: Promise<void> } | null = null;
  private next: Promise<void> | null = null;

  constructor(
    private readonly sync: (upTo: number) => Promise<void>,
    private readonly mark: () => number = () => -Infinity,
  ) {}

  readonly durable = (need = Infinity): Promise<void> => {
    const running = this.running;
    // Covered by the run under way: its end will do, or, should it fail, a run of the caller's own.
    if (running && running.upTo >= need) return running.done.catch(() => this.durable(need));
    if (this.next) return this.next;
    if (!running) return this.start();
    const next = running.done
      .catch(() => undefined)
      .then(() => {
        this.next = null;
        return this.start();
      });
    this.next = next;
    return next;
  };

  private start(): Promise<void> {
    const upTo = this.mark();
    const done = this.sync(upTo).finally(() => {
      if (this.running?.done === done) this.running = null;
    });
    this.running = { upTo, done };
    return done;
  }
}

/**
 * A -wal file's inode, its size, mtime and header when last synced, and whether that state can
 * vouch for the file being unchanged since (see syncWal).
 */
interface WalMemo {
  last: { ino: bigint; state: string; settled: boolean } | null;
}

// How long after its last write a file's mtime is trusted to move with any further write. Kernels
// before 6.13 stamp files with a clock that ticks every few milliseconds, so a write in the same
// tick as the one before leaves the mtime as it was; this margin is far above any tick.
const MTIME_SETTLED_NS = 50_000_000n;

/**
 * fdatasync of a -wal file, skipped when nothing was committed since the last sync (a write
 * query that changed no row must not cost a disk flush). A commit either appends to the file
 * (size and mtime move), or overwrites frames in place after a checkpoint, under a new header (new
 * salts) for the first one and with only the mtime moving for the next ones. So the skip trusts
 * an unchanged mtime only when the state it compares with was read well after the file's last
 * write: otherwise a commit in the same clock tick would look like no commit. A new -wal file
 * also gets its directory entry synced.
 */
async function syncWal(wal: string, memo: WalMemo): Promise<WalSync> {
  const fh = await open(wal, 'r').catch((err: unknown) => {
    // No -wal file: the last connection closed, which checkpoints it into the database, synced.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  });
  if (!fh) return 'absent';
  try {
    const readAt = BigInt(Date.now()) * 1_000_000n; // wall clock, as file times are
    const st = await fh.stat({ bigint: true });
    const header = Buffer.alloc(32);
    await fh.read(header, 0, 32, 0);
    const state = `${st.size}:${st.mtimeNs}:${header.toString('hex')}`;
    const last = memo.last;
    if (last?.ino === st.ino && last.state === state && last.settled) return 'unchanged';
    await fh.datasync();
    if (last?.ino !== st.ino) await fsyncPath(dirname(wal));
    memo.last = { ino: st.ino, state, settled: readAt - st.mtimeNs > MTIME_SETTLED_NS };
    return 'synced';
  } finally {
    await fh.close();
  }
}

export interface Migration {
  name: string;
  up: (qi: QueryInterface) => Promise<void>;
  down?: (qi: QueryInterface) => Promise<void>;
}

/** A database whose schema a newer Berth has migrated: this version must not run on it. */
export class SchemaTooNewError extends BerthError {
  constructor(table: string, unknown: string[]) {
    super(
      'DB_SCHEMA_NEWER',
      `the database has migrations this version of Berth does not know (${unknown.join(', ')} in ${table}): a newer Berth upgraded it. ` +
        'Upgrade this node to that version (or newer); see "Upgrading" in docs/operator-guide.md',
      { status: 500 },
    );
  }
}

/** A database whose schema lacks migrations this version needs, when it may not apply them itself. */
export class SchemaTooOldError extends BerthError {
  constructor(table: string, pending: string[]) {
    super('DB_SCHEMA_OLD', `the database lacks migrations this version needs (${pending.join(', ')} in ${table}): run \`berth db sync\` first`, {
      status: 500,
    });
  }
}

/** Names recorded in a migrations table, in order; none when the table does not exist yet. */
export async function appliedMigrations(db: Sequelize, table: string): Promise<string[]> {
  const qi = db.getQueryInterface();
  const tables = (await qi.showAllTables()).map((t) => (typeof t === 'string' ? t : (t as { tableName: string }).tableName));
  if (!tables.includes(table)) return [];
  const rows = (await db.query(`SELECT name FROM ${qi.quoteIdentifier(table)} ORDER BY name`, { type: QueryTypes.SELECT })) as Array<{ name: string }>;
  return rows.map((r) => r.name);
}

/** Refuses a schema with migrations this version does not know (a newer Berth's). */
export async function checkSchema(db: Sequelize, table: string, migrations: Migration[]): Promise<{ applied: string[]; pending: string[] }> {
  const applied = await appliedMigrations(db, table);
  const known = new Set(migrations.map((m) => m.name));
  const unknown = applied.filter((n) => !known.has(n));
  if (unknown.length) throw new SchemaTooNewError(table, unknown);
  return { applied, pending: migrations.map((m) => m.name).filter((n) => !applied.includes(n)) };
}

/**
 * Applies versioned migrations in order, recording them in a per-component table, under a lock
 * so that several processes migrating the same database at once (two \`berth db sync\`, or nodes
 * starting together on a shared PostgreSQL) apply each migration exactly once: PostgreSQL's
 * advisory lock keyed by the table name, or for SQLite a lock file beside the database. A schema
 * that a newer Berth migrated is refused (SchemaTooNewError), before and under the lock.
 */
export async function migrate(db: Sequelize, table: string, migrations: Migration[]): Promise<string[]> {
  await checkSchema(db, table, migrations);
  return withMigrationLock(db, table, async () => {
    await checkSchema(db, table, migrations);
    const umzug = new Umzug({
      migrations: migrations.map((m) => ({
        name: m.name,
        up: async () => m.up(db.getQueryInterface()),
        down: async () => {
          if (m.down) await m.down(db.getQueryInterface());
        },
      })),
      storage: new SequelizeStorage({ sequelize: db, tableName: table }),
      logger: undefined,
    });
    const done = await umzug.up();
    return done.map((m) => m.name);
  });
}

/**
 * What a service does with its schema at start-up: apply what is pending under the migration lock
 * (`autoSync`, the default), or only check it, refusing a schema older than this version needs.
 * A schema a newer Berth migrated is refused either way.
 */
export async function prepareSchema(db: Sequelize, table: string, migrations: Migration[], opts: { autoSync: boolean }): Promise<void> {
  if (opts.autoSync) {
    await migrate(db, table, migrations);
    return;
  }
  const { pending } = await checkSchema(db, table, migrations);
  if (pending.length) throw new SchemaTooOldError(table, pending);
}

/** A stable 63-bit advisory lock key for a migrations table. */
function advisoryKey(table: string): string {
  return BigInt.asIntN(64, BigInt('0x' + createHash('sha256').update(`berth-migrate:${table}`).digest('hex').slice(0, 16))).toString();
}

async function withMigrationLock<T>(db: Sequelize, table: string, fn: () => Promise<T>): Promise<T> {
  if (db.getDialect() === 'postgres') {
    // A session-level lock held on one connection of its own while the migrations run on others.
    const cm = db.connectionManager as unknown as { getConnection(): Promise<PgConnection>; releaseConnection(c: PgConnection): Promise<void> };
    const conn = await cm.getConnection();
    const key = advisoryKey(table);
    try {
      await conn.query(`SELECT pg_advisory_lock(${key})`);
      try {
        return await fn();
      } finally {
        await conn.query(`SELECT pg_advisory_unlock(${key})`);
      }
    } finally {
      await cm.releaseConnection(conn);
    }
  }
  const storage = (db as unknown as { options: { storage?: string } }).options.storage;
  if (db.getDialect() !== 'sqlite' || !storage || storage === ':memory:') return fn();
  const release = await lockFile(`${storage}.migrate-lock`);
  try {
    return await fn();
  } finally {
    await release();
  }
}

interface PgConnection {
  query(sql: string): Promise<unknown>;
}

/**
 * An exclusive lock file holding its owner's pid: made with O_EXCL, waited for while another live
 * process holds it, taken over when its holder is gone (a crash mid-migration).
 */
export async function lockFile(path: string, timeoutMs = 300_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (holder > 0 && !alive(holder)) {
      await rm(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new BerthError('DB_LOCKED', `${path} is held by process ${holder || '?'}: another migration runs`, { status: 503 });
    await new Promise((r) => setTimeout(r, 100));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
