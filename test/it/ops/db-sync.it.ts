import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { migrations as driverMigrations } from '../../../driver/db/migrations.js';
import { migrations as imageMigrations } from '../../../glance-bridge/store/migrations.js';
import { ROOT } from '../../support/fixtures.js';

const exec = promisify(execFile);
const ADMIN_URL = process.env.BERTH_TEST_POSTGRES ?? 'postgres://berth:berth@127.0.0.1:5432/berth_test';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeout = 120_000): Promise<Result> {
  try {
    const { stdout, stderr } = await exec(file, args, { env, timeout });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** `berth db sync` on a real PostgreSQL shared by the compute and image databases. */
describe('berth db sync on PostgreSQL', function () {
  this.timeout(180_000);
  const dbName = `berth_sync_${randomUUID().slice(0, 8)}`;
  let admin: pg.Client;
  let scratch: string;
  let env: NodeJS.ProcessEnv;
  let url: string;

  const berth = (...args: string[]) => run(join(ROOT, 'tools', 'berth'), args, env);
  const rows = async (table: string): Promise<string[]> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<{ name: string }>(`SELECT name FROM ${table} ORDER BY name`)).rows.map((r) => r.name);
    } finally {
      await c.end();
    }
  };

  before(async () => {
    admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    const u = new URL(ADMIN_URL);
    u.pathname = `/${dbName}`;
    url = u.toString();
    scratch = mkdtempSync(join(tmpdir(), 'berth-dbsync-'));
    const conf = join(scratch, 'berth.conf');
    writeFileSync(
      conf,
      `[DEFAULT]\nstate_path = ${scratch}\n[database]\nconnection = ${url}\n[image_store]\nconnection = ${url}\nlisten = 127.0.0.1:45111\nregistry_listen =\n`,
    );
    env = { PATH: process.env.PATH, HOME: process.env.HOME, BERTH_FROM_SOURCE: '1', BERTH_CONFIG: conf };
  });
  after(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('a service set to db_auto_sync = false refuses an unmigrated database and says to run berth db sync', async () => {
    const r = await run(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'glance-bridge', 'main.ts')],
      { ...env, BERTH__DEFAULT__DB_AUTO_SYNC: 'false' },
      60_000,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /lacks migrations this version needs .*berth db sync/);
  });

  it('two concurrent syncs serialize: every migration applied exactly once, both succeed', async () => {
    const [a, b] = await Promise.all([berth('-f', 'json', 'db', 'sync'), berth('-f', 'json', 'db', 'sync')]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const applied = [a, b].flatMap((r) => (JSON.parse(r.stdout) as { applied: string }[]).flatMap((row) => row.applied.split(' ').filter((x) => x !== '-')));
    const expected = [...driverMigrations, ...imageMigrations].map((m) => m.name);
    assert.deepEqual([...applied].sort(), [...expected].sort(), 'each migration applied by exactly one of the two runs');
    assert.deepEqual(await rows('berth_driver_migrations'), driverMigrations.map((m) => m.name).sort());
    assert.deepEqual(await rows('image_store_migrations'), imageMigrations.map((m) => m.name).sort());
    const version = await berth('-f', 'json', 'db', 'version');
    assert.equal(version.code, 0, version.stderr);
    for (const row of JSON.parse(version.stdout) as { pending: string }[]) assert.equal(row.pending, '-');
  });

  it('a schema a newer Berth migrated: db sync and the services refuse, naming the unknown migration', async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`INSERT INTO berth_driver_migrations (name) VALUES ('9999-from-a-newer-berth')`);
    await c.query(`INSERT INTO image_store_migrations (name) VALUES ('9999-from-a-newer-berth')`);
    await c.end();
    const sync = await berth('db', 'sync');
    assert.equal(sync.code, 1);
    assert.match(sync.stderr, /does not know \(9999-from-a-newer-berth in berth_driver_migrations\).*DB_SCHEMA_NEWER/s);
    const images = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'glance-bridge', 'main.ts')], env, 60_000);
    assert.equal(images.code, 1, images.stderr);
    assert.match(images.stderr, /^berth-images: the database has migrations this version of Berth does not know \(9999-from-a-newer-berth/m);
    const compute = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'driver', 'main.ts')], env, 60_000);
    assert.equal(compute.code, 1, compute.stderr);
    assert.match(compute.stderr, /^berth-compute: the database has migrations this version of Berth does not know \(9999-from-a-newer-berth/m);
  });
});
