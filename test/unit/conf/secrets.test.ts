import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../../common/log.js';
import { redactor } from '../../../common/redact.js';
import { ConfigError, loadConfig } from '../../../conf/load.js';
import { secretValues, secretsIn } from '../../../conf/secrets.js';
import { ROOT } from '../../support/fixtures.js';

const PASSWORD = 'Rabb1t-s3cret';

// Secrets never printed: configuration errors, logs and a service's last words redact every
// option marked secret.
describe('secrets are never printed', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-secrets-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a malformed secret option is named in the error without its value', () => {
    const file = join(dir, 'bad-url.conf');
    writeFileSync(file, `[DEFAULT]\ntransport_url = rabbit://berth:${PASSWORD}@[broker:5672/\n[agent]\nurl = not a url\n`);
    try {
      loadConfig({ files: [file], env: {} });
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /\[DEFAULT\] transport_url: not a URL: \(a secret value, not shown\)/);
      assert.ok(!err.message.includes(PASSWORD), err.message);
      // Options that are not secret still show the value, which helps.
      assert.match(err.message, /\[agent\] url: not a URL: "not a url"/);
    }
  });

  it('finds the password of each host of a URL, and whole values of other secrets', () => {
    assert.deepEqual(secretsIn(`rabbit://a:${PASSWORD}@h1:5672,b:p%40ss-2@h2:5672/nova`), [PASSWORD, PASSWORD, 'p%40ss-2', 'p@ss-2']);
    assert.deepEqual(secretsIn('postgres://berth@db/berth'), []);
    assert.deepEqual(secretsIn('sqlite:///var/lib/berth/driver.sqlite'), []);
    assert.deepEqual(secretsIn('an-agent-token'), ['an-agent-token']);
    const config = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { transport_url: `rabbit://berth:${PASSWORD}@127.0.0.1:5672/` },
        agent: { token: 'agent-token-value' },
        keystone_authtoken: { password: 'ks-password' },
      },
    });
    const secrets = secretValues(config);
    for (const s of [PASSWORD, 'agent-token-value', 'ks-password']) assert.ok(secrets.includes(s), `${s} in ${JSON.stringify(secrets)}`);
  });

  it('redacts long secrets anywhere, as written, JSON-escaped and percent-encoded, longest first', () => {
    const redact = redactor(['pa"ss/word-1', 'pa"ss/word-12']);
    assert.equal(redact('x pa"ss/word-1 y pa"ss/word-123'), 'x *** y ***3');
    assert.equal(redact(JSON.stringify({ msg: 'pa"ss/word-1' })), '{"msg":"***"}');
    assert.equal(redact(`u:${encodeURIComponent('pa"ss/word-1')}@h`), 'u:***@h');
  });

  it('redacts a short secret where a secret stands (a URL password, a whole JSON value), not the word elsewhere', () => {
    const redact = redactor(['berth', 'guest']);
    assert.equal(
      redact('{"msg":"berth-compute consuming","url":"postgres://berth:berth@db/berth","password":"guest"}'),
      '{"msg":"berth-compute consuming","url":"postgres://berth:***@db/berth","password":"***"}',
    );
    assert.equal(redact('rabbit://guest:guest@h1:5672,guest:guest@h2:5672/'), 'rabbit://guest:***@h1:5672,guest:***@h2:5672/');
  });

  it('a service log line never carries a secret, whatever field or error message holds it', () => {
    const lines: string[] = [];
    const log = createLogger('berth-test', {
      destination: {
        write: (line: string) => {
          lines.push(line);
        },
      },
      secrets: [PASSWORD],
    });
    log.warn(
      { err: new Error(`cannot connect to rabbit://berth:${PASSWORD}@broker:5672/`), url: `amqp://berth:${encodeURIComponent(PASSWORD)}@h` },
      `login as berth/${PASSWORD} refused`,
    );
    const text = lines.join('');
    assert.ok(text.includes('login as berth/*** refused'), text);
    assert.ok(text.includes('rabbit://berth:***@broker') && text.includes('amqp://berth:***@h'), text);
    assert.ok(!text.includes(PASSWORD), text);
    assert.ok(!text.includes(encodeURIComponent(PASSWORD)), text);
  });

  it('a service started with a malformed secret option exits 2 naming the option, without the value', () => {
    const conf = join(dir, 'service.conf');
    writeFileSync(conf, `[DEFAULT]\nstate_path = ${join(dir, 'state')}\ntransport_url = rabbit://berth:${PASSWORD}@[broker/\n`);
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'driver', 'main.ts')], {
      env: { ...process.env, BERTH_CONFIG: conf },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /berth-compute: invalid configuration:\n.*\[DEFAULT\] transport_url: not a URL/);
    assert.ok(!run.stderr.includes(PASSWORD) && !run.stdout.includes(PASSWORD), run.stderr);
  });
});
