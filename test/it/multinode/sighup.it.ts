import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newUniqueId } from '../../../driver/rpc/envelope.js';
import { AMQP_URL, AmqpPeer } from '../../support/amqp.js';
import { spawnDriverProcess, type DriverProcess } from '../../support/driver-process.js';
import { waitUntil } from '../../support/waits.js';

type LogLine = Record<string, unknown> & { msg?: string; level?: number };

function logLines(file: string): LogLine[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

describe('berth-compute process: SIGHUP re-reads the configuration and applies [DEFAULT] debug', function () {
  this.timeout(60_000);
  const id = newUniqueId().slice(0, 8);
  const host = `sighup-${id}`;
  const exchange = `berth-it-${id}`;
  let state: string;
  let logFile: string;
  let driver: DriverProcess | undefined;
  let peer: AmqpPeer | undefined;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'berth-sighup-'));
    logFile = join(state, 'driver.log');
    driver = await spawnDriverProcess(
      {
        BERTH__DEFAULT__HOST: host,
        BERTH__DEFAULT__CONTROL_EXCHANGE: exchange,
        BERTH__DEFAULT__STATE_PATH: state,
        BERTH__DEFAULT__TRANSPORT_URL: process.env.BERTH_TEST_TRANSPORT_URL ?? AMQP_URL.replace(/^amqp:/, 'rabbit:') + '/',
        BERTH__DATABASE__CONNECTION: `sqlite:///${join(state, 'driver.sqlite')}`,
        BERTH__DEFAULT__STATUS_LISTEN: '',
        // The agent is not needed to answer pings.
        BERTH__AGENT__URL: 'http://127.0.0.1:9',
        BERTH__AGENT__TOKEN: 't',
      },
      state,
      logFile,
    );
    peer = await AmqpPeer.open();
  });
  after(async () => {
    await driver?.kill('SIGTERM');
    await peer?.close();
    rmSync(state, { recursive: true, force: true });
  });

  // The file spawnDriverProcess points BERTH_CONFIG at.
  const writeConf = (text: string) => writeFileSync(join(state, 'empty.conf'), text);
  const ping = async (arg: string) => {
    const { reply } = await peer!.call(exchange, `compute.${host}`, { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg } });
    assert.equal(reply.failure, null);
  };
  const debugLines = () => logLines(logFile).filter((l) => l.msg === 'dispatching' && l.level === 20);
  const hup = async (expect: string) => {
    const before = logLines(logFile).length;
    process.kill(driver!.pid, 'SIGHUP');
    return waitUntil(
      () =>
        logLines(logFile)
          .slice(before)
          .find((l) => l.msg?.startsWith(expect)),
      10_000,
      expect,
    );
  };

  it('starts at info: no debug lines', async () => {
    await ping('before-hup');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(debugLines().length, 0);
  });

  it("switches to debug on SIGHUP when the file says debug = true, including the RPC server's logger", async () => {
    writeConf('[DEFAULT]\ndebug = true\n');
    const line = await hup('SIGHUP: log level changed');
    assert.equal(line.log_level, 'debug');
    assert.equal(line.previous_log_level, 'info');
    await ping('after-hup-debug');
    // The RPC server's logger is a child made at start-up: it follows the new level too.
    await waitUntil(() => debugLines().length === 1, 5000, 'a debug line from the RPC server');
  });

  it('keeps the level and stays up when the file no longer parses', async () => {
    writeConf('[DEFAULT]\ndebug = maybe\n');
    const line = await hup('SIGHUP: configuration not reloaded');
    assert.match(String(line.err), /debug/);
    await ping('still-up');
  });

  it('goes back to info when debug is removed', async () => {
    writeConf('');
    const line = await hup('SIGHUP: log level changed');
    assert.equal(line.log_level, 'info');
    assert.equal(line.previous_log_level, 'debug');
    const before = debugLines().length;
    await ping('back-to-info');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(debugLines().length, before);
  });
});
