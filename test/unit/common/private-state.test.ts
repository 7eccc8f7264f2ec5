import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { openDatabase, tuneSqlite } from '../../../common/db.js';
import { makePrivateDirSync } from '../../../common/fs.js';
import { BlobStore } from '../../../glance-bridge/store/blobs.js';

const modeOf = (path: string): number => statSync(path).mode & 0o777;

// State on disk holds user_data, key_data and private image content: only the service's user
// may read it, whatever umask the service was started with.
describe('state on disk is private', () => {
  let dir: string;
  let umask: number;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-private-'));
    chmodSync(dir, 0o755);
    umask = process.umask(0o022);
  });
  afterEach(() => {
    process.umask(umask);
    rmSync(dir, { recursive: true, force: true });
  });

  it('an SQLite database is created 0600 in a 0700 folder, and its -wal file too', async () => {
    const file = join(dir, 'state', 'driver.sqlite');
    const db = openDatabase(`sqlite://${file}`);
    try {
      await tuneSqlite(db);
      await db.query('CREATE TABLE t (x TEXT)');
      await db.query("INSERT INTO t VALUES ('user data')");
      assert.equal(modeOf(join(dir, 'state')), 0o700);
      assert.equal(modeOf(file), 0o600);
      assert.ok(existsSync(`${file}-wal`));
      assert.equal(modeOf(`${file}-wal`), 0o600);
    } finally {
      await db.close();
    }
  });

  it('a database an older version left readable to others is narrowed to 0600, -wal and -shm too', async () => {
    const file = join(dir, 'images.sqlite');
    const first = openDatabase(`sqlite://${file}`);
    await first.query('CREATE TABLE t (x TEXT)');
    await first.close();
    // As an older version left them, under umask 022.
    writeFileSync(`${file}-wal`, '');
    writeFileSync(`${file}-shm`, '');
    for (const f of [file, `${file}-wal`, `${file}-shm`]) chmodSync(f, 0o644);
    const again = openDatabase(`sqlite://${file}`);
    await again.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(modeOf(f), 0o600, f);
  });

  it('the blob store is 0700 (an existing folder too) and its blobs 0600', async () => {
    const root = join(dir, 'blobs');
    mkdirSync(root, { mode: 0o755 });
    chmodSync(root, 0o755);
    const store = new BlobStore(root);
    await store.init();
    const body = Buffer.from('private layer');
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    await store.put(digest, Readable.from([body]));
    const path = store.pathOf(digest);
    assert.equal(modeOf(root), 0o700);
    for (const sub of ['sha256', 'tmp']) assert.equal(modeOf(join(root, sub)), 0o700, sub);
    assert.equal(modeOf(join(path, '..')), 0o700);
    assert.equal(modeOf(path), 0o600);
  });

  it("the state folder is made private; a folder that is not Berth's own is left as the operator made it", () => {
    const state = join(dir, 'var-lib-berth');
    mkdirSync(state, { mode: 0o755 });
    chmodSync(state, 0o755);
    makePrivateDirSync(state, { tighten: true });
    assert.equal(modeOf(state), 0o700);
    const shared = join(dir, 'shared-tmp');
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(shared, 0o1777);
    makePrivateDirSync(shared);
    assert.equal(statSync(shared).mode & 0o7777, 0o1777);
    makePrivateDirSync(join(dir, 'new', 'deep'));
    assert.equal(modeOf(join(dir, 'new')), 0o700);
    assert.equal(modeOf(join(dir, 'new', 'deep')), 0o700);
  });
});
