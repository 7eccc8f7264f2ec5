import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../conf/load.js';

/** `berth conf check` (and start-up) on the broker options: URL, failover, TLS, queue types. */
describe('conf check: the broker', () => {
  let dir: string;
  let n = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-conf-broker-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const problems = (text: string): string[] => {
    const file = join(dir, `c-${++n}.conf`);
    writeFileSync(file, text);
    try {
      loadConfig({ files: [file], env: {} });
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => p.replace(`${file}: `, ''));
    }
  };

  it('accepts several hosts, amqps://, TLS files that exist and quorum queues', () => {
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, 'x');
    assert.deepEqual(
      problems(
        `[DEFAULT]\ntransport_url = rabbit://u:p@h1:5672,u:p@h2:5672/nova\n[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = ${ca}\n` +
          'rabbit_quorum_queue = true\nrabbit_quorum_delivery_limit = 5\nkombu_failover_strategy = shuffle\n',
      ),
      [],
    );
    assert.deepEqual(problems('[DEFAULT]\ntransport_url = amqps://u:p@[::1],u:p@mq2:5671/\n'), []);
  });

  it('names a bad port, a missing host and a bad query value of transport_url, never the password', () => {
    const [bad] = problems('[DEFAULT]\ntransport_url = rabbit://u:s3cret@h1:5672,u:s3cret@h2:0/\n');
    assert.match(bad!, /^\[DEFAULT\] transport_url: port 0 of h2 is not a number in 1-65535$/);
    assert.deepEqual(problems('[DEFAULT]\ntransport_url = rabbit:///nova\n'), ['[DEFAULT] transport_url: no host in rabbit:///nova']);
    assert.deepEqual(problems('[DEFAULT]\ntransport_url = rabbit://u:s3cret@h1/?ssl=maybe\n'), ['[DEFAULT] transport_url: ?ssl=maybe is not a boolean']);
  });

  it('refuses quorum with HA or auto-delete queues, an unknown TLS version and unreadable TLS files (also when TLS comes from the URL)', () => {
    assert.deepEqual(problems('[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\nrabbit_ha_queues = true\n'), [
      '[oslo_messaging_rabbit] rabbit_quorum_queue and rabbit_ha_queues are both enabled: a queue is quorum or classic mirrored (HA), not both',
    ]);
    assert.deepEqual(problems('[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\namqp_auto_delete = true\n'), [
      '[oslo_messaging_rabbit] rabbit_quorum_queue and amqp_auto_delete are both enabled: RabbitMQ refuses auto-delete quorum queues',
    ]);
    assert.deepEqual(problems('[oslo_messaging_rabbit]\nssl_version = TLSv9\n'), [
      '[oslo_messaging_rabbit] ssl_version: "TLSv9" is not one of TLSv1, TLSv1_1, TLSv1_2, SSLv23 (or empty)',
    ]);
    const missing = join(dir, 'nope.pem');
    assert.deepEqual(problems(`[DEFAULT]\ntransport_url = rabbit://h/?ssl=1\n[oslo_messaging_rabbit]\nssl_cert_file = ${missing}\n`), [
      `[oslo_messaging_rabbit] ssl_cert_file: ${missing} cannot be read (ENOENT)`,
    ]);
    // Without TLS the files are not used, so not checked.
    assert.deepEqual(problems(`[oslo_messaging_rabbit]\nssl_cert_file = ${missing}\n`), []);
  });

  it('enumerations and ranges of the failover options', () => {
    assert.match(problems('[oslo_messaging_rabbit]\nkombu_failover_strategy = random\n')[0]!, /kombu_failover_strategy.*round-robin.*shuffle/);
    assert.match(problems('[oslo_messaging_rabbit]\nkombu_reconnect_delay = 10\n')[0]!, /kombu_reconnect_delay/);
  });
});
