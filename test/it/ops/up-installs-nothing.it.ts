import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../support/fixtures.js';
import { type CliResult, runBerth } from '../../support/berth-cli.js';

/**
 * `berth up` on a production node: it starts Berth's own services with the node's configuration
 * and nothing else. Every program that installs packages or starts system services is replaced
 * on PATH by a shim that records its call (bash too, which the development scripts run under,
 * then runs the real one), so any attempt shows up, whether or not the system services are up.
 */
describe('berth up installs nothing and starts only Berth', function () {
  this.timeout(180_000);
  let scratch: string;
  let calls: string;
  let env: NodeJS.ProcessEnv;
  const SHIMMED = [
    'bash',
    'apt-get',
    'apt',
    'dpkg',
    'dpkg-query',
    'systemctl',
    'service',
    'invoke-rc.d',
    'rabbitmqctl',
    'rabbitmq-server',
    'dockerd',
    'pg_ctlcluster',
  ];
  const watched = ['/etc/rabbitmq/rabbitmq.conf', '/etc/docker/daemon.json'].filter((f) => existsSync(f));
  const stamps = new Map<string, number>();

  const berth = (...args: string[]): Promise<CliResult> => runBerth(args, env, { timeoutMs: 150_000 });

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'berth-up-'));
    const bin = join(scratch, 'bin');
    calls = join(scratch, 'calls');
    writeFileSync(calls, '');
    mkdirSync(bin);
    for (const name of SHIMMED) {
      const real = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => join(d, name)).find((p) => existsSync(p)) ?? '/bin/false';
      writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >> ${calls}\nexec ${real} "$@"\n`);
      chmodSync(join(bin, name), 0o755);
    }
    for (const f of watched) stamps.set(f, statSync(f).mtimeMs);
    const id = randomUUID().slice(0, 8);
    const conf = join(scratch, 'berth.conf');
    writeFileSync(
      conf,
      [
        '[DEFAULT]',
        `host = up-${id}`,
        `control_exchange = berth-up-${id}`,
        `state_path = ${join(scratch, 'state')}`,
        // Ports below the kernel's ephemeral range (32768-60999), which an outgoing connection may hold.
        'status_listen = 127.0.0.1:31103',
        '[agent]',
        'listen = 127.0.0.1:31102',
        'url = http://127.0.0.1:31102',
        'guest_firewall = false',
        '[glance]',
        'api_url = http://127.0.0.1:31101',
        '[image_store]',
        'listen = 127.0.0.1:31101',
        'registry_listen = 127.0.0.1:31104',
        '',
      ].join('\n'),
    );
    env = { PATH: `${bin}:${process.env.PATH}`, HOME: process.env.HOME, BERTH_FROM_SOURCE: '1', BERTH_CONFIG: conf };
  });
  after(async () => {
    await berth('down');
    rmSync(scratch, { recursive: true, force: true });
  });

  it('starts the three services, which answer, and runs no installer, service manager or development script', async () => {
    const up = await berth('-f', 'json', 'up');
    assert.equal(up.code, 0, up.stderr + up.stdout);
    const rows = JSON.parse(up.stdout) as { service: string; status: string }[];
    assert.deepEqual(
      rows.map((r) => [r.service, r.status]),
      [
        ['berth-images', 'up'],
        ['berth-agent', 'up'],
        ['berth-compute', 'up'],
      ],
    );
    const status = await berth('-f', 'json', 'status');
    assert.equal(status.code, 0, status.stdout);
    const recorded = readFileSync(calls, 'utf8')
      .split('\n')
      .filter(Boolean)
      // The CLI's own launcher is a bash script: that call is expected, nothing else.
      .filter((line) => line !== `bash ${join(ROOT, 'tools', 'berth')} -f json up` && line !== `bash ${join(ROOT, 'tools', 'berth')} -f json status`);
    assert.deepEqual(recorded, [], `berth up ran:\n${recorded.join('\n')}`);
    for (const [f, mtime] of stamps) assert.equal(statSync(f).mtimeMs, mtime, `${f} was rewritten`);
  });

  it('the old --no-system switch is gone (up has nothing else to start); the development stack is berth dev', async () => {
    const r = await berth('up', '--no-system');
    assert.equal(r.code, 2);
    const help = await berth('dev', '--help');
    assert.equal(help.code, 0);
    for (const sub of ['services', 'cloud', 'test-image', 'up']) assert.match(help.stdout, new RegExp(`\\b${sub}\\b`));
    const bad = await berth('dev', 'services', 'explode');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown action/);
  });
});
