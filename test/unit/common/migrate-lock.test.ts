import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataTypes } from 'sequelize';
import { lockFile, migrate, openDatabase, prepareSchema, type Migration } from '../../../common/db.js';

describe('migrations under a lock (SQLite)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-migrate-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const slowMigrations = (log: string[]): Migration[] => [
    {
      name: '0001-a',
      async up(qi) {
        log.push('0001');
        await new Promise((r) => setTimeout(r, 50));
        await qi.createTable('a', { id: { type: DataTypes.INTEGER, primaryKey: true } });
      },
    },
    {
      name: '0002-b',
      async up(qi) {
        log.push('0002');
        await qi.createTable('b', { id: { type: DataTypes.INTEGER, primaryKey: true } });
      },
    },
  ];

  it('two databases handles migrating one file at once apply each migration once', async () => {
    const file = join(dir, 'x.sqlite');
    const log: string[] = [];
    const one = openDatabase(`sqlite:///${file}`);
    const two = openDatabase(`sqlite:///${file}`);
    const [a, b] = await Promise.all([migrate(one, 'm', slowMigrations(log)), migrate(two, 'm', slowMigrations(log))]);
    assert.deepEqual([...a, ...b].sort(), ['0001-a', '0002-b']);
    assert.deepEqual(log, ['0001', '0002']);
    assert.ok(!existsSync(`${file}.migrate-lock`), 'lock file removed');
    await one.close();
    await two.close();
  });

  it('a schema with a migration this version does not know is refused; without auto sync a pending one is too', async () => {
    const file = join(dir, 'y.sqlite');
    const db = openDatabase(`sqlite:///${file}`);
    await migrate(db, 'm', slowMigrations([]));
    await db.query(`INSERT INTO m (name) VALUES ('0003-newer')`);
    await assert.rejects(migrate(db, 'm', slowMigrations([])), { code: 'DB_SCHEMA_NEWER', message: /0003-newer/ });
    await assert.rejects(prepareSchema(db, 'm', slowMigrations([]), { autoSync: false }), { code: 'DB_SCHEMA_NEWER' });
    const fresh = openDatabase(`sqlite:///${join(dir, 'z.sqlite')}`);
    await assert.rejects(prepareSchema(fresh, 'm', slowMigrations([]), { autoSync: false }), { code: 'DB_SCHEMA_OLD', message: /berth db sync/ });
    await db.close();
    await fresh.close();
  });

  it('a lock file whose holder died is taken over; a live holder is waited for', async () => {
    const path = join(dir, 'l.lock');
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.on('exit', r));
    writeFileSync(path, `${dead.pid}\n`);
    const release = await lockFile(path, 2000);
    await assert.rejects(lockFile(path, 300), { code: 'DB_LOCKED' });
    await release();
    assert.ok(!existsSync(path));
  });
});
