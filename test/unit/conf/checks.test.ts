import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, didYouMean, editDistance, loadConfig } from '../../../conf/load.js';
import { renderSample } from '../../../conf/sample.js';

/** What `berth conf check` catches beyond types: what start-up would trip on. */
describe('conf check: what start-up would trip on', () => {
  let dir: string;
  let n = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-conf-checks-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const problems = (text: string, env: NodeJS.ProcessEnv = {}): string[] => {
    const file = join(dir, `c-${++n}.conf`);
    writeFileSync(file, text);
    try {
      loadConfig({ files: [file], env });
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => p.replace(`${file}: `, ''));
    }
  };
  const accepts = (text: string) => assert.deepEqual(problems(text), [], text);

  it('listen addresses: HOST:PORT with a port of 0-65535 (0: the system picks one) and a real IP address; a destination needs 1-65535', () => {
    assert.deepEqual(problems('[DEFAULT]\nstatus_listen = 127.0.0.1:99999\n'), [
      '[DEFAULT] status_listen: port 99999 is out of range 0-65535, in "127.0.0.1:99999"',
    ]);
    accepts('[agent]\nlisten = 127.0.0.1:0\n[DEFAULT]\nstatus_listen = 127.0.0.1:0\n');
    assert.deepEqual(problems('[agent]\nimage_registry = 127.0.0.1:0\n'), ['[agent] image_registry: port 0 is out of range 1-65535, in "127.0.0.1:0"']);
    assert.deepEqual(problems('[image_store]\nlisten = 127.0.0.1\n'), ['[image_store] listen: expected HOST:PORT, got "127.0.0.1"']);
    assert.deepEqual(problems('[image_store]\nregistry_listen = 300.0.0.1:5050\n'), [
      '[image_store] registry_listen: 300.0.0.1 is not an IP address, in "300.0.0.1:5050"',
    ]);
    accepts(
      '[DEFAULT]\nstatus_listen = [::1]:9394\n[agent]\nlisten = localhost:9393\n[image_store]\nlisten = 127.0.0.1:9292\nregistry_listen = 127.0.0.1:5050\n',
    );
  });

  it('a unix socket path only where the option takes one; empty disables status_listen', () => {
    accepts('[DEFAULT]\nstatus_listen = /run/berth/status.sock\n[agent]\nlisten = /run/berth/agent.sock\n');
    accepts('[DEFAULT]\nstatus_listen =\n');
    assert.deepEqual(problems('[image_store]\nlisten = /run/images.sock\n'), [
      '[image_store] listen: a unix socket path is not accepted here: expected HOST:PORT, got "/run/images.sock"',
    ]);
  });

  it('URL schemes: the broker, the databases, the agent, docker and HTTP endpoints', () => {
    assert.deepEqual(problems('[DEFAULT]\ntransport_url = http://example\n'), [
      '[DEFAULT] transport_url: the scheme http:// is not one of rabbit://, amqp://, amqps://',
    ]);
    assert.deepEqual(problems('[database]\nconnection = mysql://u:p@db/berth\n'), [
      '[database] connection: the scheme mysql:// is not one of sqlite://, postgres://, postgresql://',
    ]);
    assert.deepEqual(problems('[image_store]\nconnection = /var/lib/berth/images.sqlite\n'), [
      '[image_store] connection: expected a URL (sqlite://, postgres://, postgresql://), got (a secret value, not shown)',
    ]);
    assert.deepEqual(problems('[glance]\napi_url = ftp://h/\n'), ['[glance] api_url: the scheme ftp:// is not one of http://, https://']);
    assert.deepEqual(problems('[agent]\nurl = tcp://127.0.0.1:9393\n'), ['[agent] url: the scheme tcp:// is not one of http://, https://, unix://']);
    assert.deepEqual(problems('[placement]\nauth_url = keystone:5000/v3\nusername = u\npassword = p\n'), [
      '[placement] auth_url: expected a URL (http://, https://), got "keystone:5000/v3"',
    ]);
    accepts(
      '[DEFAULT]\ntransport_url = rabbit://u:p@h1:5672,u:p@h2:5672/vhost\n[database]\nconnection = postgresql+psycopg2://u:p@db:5432/berth\n' +
        '[image_store]\nconnection = postgres://u:p@db/images\n[agent]\nurl = unix:///run/berth/agent.sock\n[docker]\nhost_url = http://127.0.0.1:2375\n',
    );
    accepts('[database]\nconnection = sqlite:////var/lib/berth/driver.sqlite\n');
  });

  it('a secret value is never shown in a scheme problem', () => {
    const [p] = problems('[DEFAULT]\ntransport_url = http://guest:s3cretpass@h/\n');
    assert.match(p!, /transport_url: the scheme http:\/\/ is not one of/);
    assert.doesNotMatch(p!, /s3cretpass/);
  });

  it('enumerations name their choices', () => {
    assert.deepEqual(problems('[nova]\ncontrol_plane = nove\n'), ['[nova] control_plane: expected one of standalone, nova, got "nove"']);
  });

  it('"did you mean" for misspelt options and sections, and the section an option belongs in', () => {
    assert.deepEqual(problems('[DEFAULT]\nmax_concurent_builds = 3\n'), [
      '[DEFAULT] max_concurent_builds: unknown option (line 2) (did you mean max_concurrent_builds?)',
    ]);
    assert.deepEqual(problems('[databse]\nconnection = sqlite:///x\n'), ['[databse] connection: unknown section (line 2) (did you mean database?)']);
    assert.deepEqual(problems('[DEFAULT]\nconnection = sqlite:///x\n'), [
      '[DEFAULT] connection: unknown option (line 2) (it belongs in [database] connection or [image_store] connection)',
    ]);
    assert.deepEqual(problems('[DEFAULT]\nfrobnicate = 1\n'), ['[DEFAULT] frobnicate: unknown option (line 2)']);
    assert.deepEqual(problems('', { BERTH__DEFAULT__TRANSPORTURL: 'x' }), [
      'environment: BERTH__DEFAULT__TRANSPORTURL: no such option (did you mean BERTH__DEFAULT__TRANSPORT_URL?)',
    ]);
    assert.deepEqual(problems('', { BERTH__DATABSE__CONNECTION: 'x' }), [
      'environment: BERTH__DATABSE__CONNECTION: no such option (did you mean BERTH__DATABASE__CONNECTION?)',
    ]);
  });

  it('edit distance, and no suggestion for a word far from every option', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(didYouMean('debgu', ['debug', 'host']), ' (did you mean debug?)');
    assert.equal(didYouMean('zzz', ['debug', 'host']), '');
  });

  it('the sample says to copy it and check it, not "do not edit"', () => {
    const head = renderSample().split('\n').slice(0, 6).join('\n');
    assert.match(head, /Copy it to \/etc\/berth\/berth\.conf/);
    assert.match(head, /berth conf check FILE/);
    assert.doesNotMatch(head, /Do not edit\./);
  });
});
