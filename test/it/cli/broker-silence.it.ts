import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../support/fixtures.js';

const exec = promisify(execFile);

/** The berth CLI against a port that accepts connections and never answers (a hung broker). */
describe('berth CLI: a silent broker', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-cli-silent-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a broker that accepts the connection and never answers: a timeout, named as such, within the connect time', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => {
      sockets.push(s);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const conf = join(dir, 'silent.conf');
    writeFileSync(conf, `[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:${port}/\n`);
    const env = { PATH: process.env.PATH, HOME: dir, BERTH_FROM_SOURCE: '1', BERTH_CONFIG: conf, BERTH__DEFAULT__STATE_PATH: dir };
    const t0 = Date.now();
    try {
      const r = await exec(join(ROOT, 'tools', 'berth'), ['server', 'list'], { env, timeout: 30_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code?: number; stderr?: string }) => ({ code: e.code ?? -1, stderr: e.stderr ?? '' }),
      );
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /cannot reach the broker at .*: no answer within 5s \(timeout\)/);
      assert.ok(Date.now() - t0 < 12_000, `took ${Date.now() - t0} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
