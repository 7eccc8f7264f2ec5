import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCredentials, parseCredentials, registryKey } from '../../../common/registry-credentials.js';
import { ConfigError, loadConfig } from '../../../conf/load.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  return assert.fail('expected a ConfigError');
}

describe('[registry] credentials and allowlist options', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-reg-creds-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const conf = (body: string) => file(`berth-${Math.random().toString(36).slice(2)}.conf`, `[registry]\n${body}\n`);

  it('reads Docker config.json auths, by HOST[:PORT], in either form', () => {
    const table = parseCredentials(
      JSON.stringify({
        auths: {
          'registry.example.com': { auth: b64('u1:p:with:colons') },
          'https://index.docker.io/v1/': { auth: b64('hub:pw') },
          'Local.Test:5000': { username: 'u3', password: 'p3' },
        },
      }),
      'f',
    );
    assert.deepEqual(table.get('registry.example.com'), { username: 'u1', password: 'p:with:colons' });
    assert.deepEqual(table.get('docker.io'), { username: 'hub', password: 'pw' });
    assert.deepEqual(table.get('local.test:5000'), { username: 'u3', password: 'p3' });
    assert.equal(registryKey('registry-1.docker.io'), 'docker.io');
  });

  it('names what is wrong with an unusable file, never printing a secret', () => {
    assert.throws(() => parseCredentials('{', 'f'), /f: not JSON/);
    assert.throws(() => parseCredentials('{"credsStore": "desktop"}', 'f'), /no "auths" object/);
    assert.throws(
      () => parseCredentials(JSON.stringify({ auths: { h: { auth: b64('nocolon') } } }), 'f'),
      (err: Error) => /auths\["h"\].*USER:PASSWORD/.test(err.message) && !err.message.includes('nocolon'),
    );
    assert.throws(() => parseCredentials(JSON.stringify({ auths: { h: { identitytoken: 'x' } } }), 'f'), /identity tokens are not supported/);
    assert.throws(() => parseCredentials(JSON.stringify({ auths: { h: {}, 'https://H/': { auth: b64('a:b') } } }), 'f'), /needs "auth"/);
  });

  it('adds the legacy username/password for credentials_host, refusing a second set for the same registry', () => {
    const f = file('one.json', JSON.stringify({ auths: { 'a.example': { auth: b64('a:b') } } }));
    const table = loadCredentials({ file: f, legacy: { host: 'b.example:5000', username: 'old', password: 'pw' } });
    assert.deepEqual([...table.keys()].sort(), ['a.example', 'b.example:5000']);
    assert.throws(
      () => loadCredentials({ file: f, legacy: { host: 'A.example', username: 'old', password: 'pw' } }),
      /credentials_host A\.example: .*keep one/,
    );
  });

  it('refuses [registry] username/password without credentials_host, saying how to upgrade (berth conf check)', () => {
    const problems = problemsOf(() => loadConfig({ env: {}, files: [conf('username = bob\npassword = hunter2')] }));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /\[registry\] username\/password are sent only to the registry named in \[registry\] credentials_host/);
    assert.match(problems[0]!, /credentials_file/);
    assert.doesNotMatch(problems[0]!, /hunter2/);
  });

  it('keeps [registry] username/password working for the registry credentials_host names', () => {
    const c = loadConfig({ env: {}, files: [conf('username = bob\npassword = pw\ncredentials_host = registry.example.com')] });
    assert.equal(c.registry.credentials_host, 'registry.example.com');
    assert.match(
      problemsOf(() => loadConfig({ env: {}, files: [conf('credentials_host = r.example')] }))[0]!,
      /credentials_host = r\.example needs \[registry\] username and password/,
    );
  });

  it('checks the credentials file and the allowlist entries', () => {
    const bad = file('bad.json', '{"auths": {"h": {}}}');
    const problems = problemsOf(() =>
      loadConfig({ env: {}, files: [conf(`credentials_file = ${bad}\nallowed_internal = 127.0.0.1:5000, 10.0.0.0/33, fd00::/8`)] }),
    );
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems.join('\n'), /allowed_internal: "10\.0\.0\.0\/33": prefix \/33 is too long/);
    assert.match(problems.join('\n'), /credentials_file .*needs "auth"/);
    assert.match(problemsOf(() => loadConfig({ env: {}, files: [conf(`credentials_file = ${join(dir, 'absent.json')}`)] }))[0]!, /cannot read: ENOENT/);
  });
});
