import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Sequelize, Transaction, type QueryInterface } from 'sequelize';
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

/** Applies versioned migrations in order, recording them in a per-component table. */
export async function migrate(db: Sequelize, table: string, migrations: Migration[]): Promise<string[]> {
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
}
