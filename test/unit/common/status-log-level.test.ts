import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LogLevelControl, reloadLogLevel } from '../../../common/log-level.js';
import { silentLogger } from '../../../common/log.js';
import { createStatusApp } from '../../../common/status.js';
import { MetricsRegistry } from '../../../common/metrics.js';
import { DriverMetrics } from '../../../driver/metrics.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

/** Calls a Koa app's handler without a socket. */
async function get(app: ReturnType<typeof createStatusApp>, path: string): Promise<{ status: number; body: any }> {
  const { IncomingMessage, ServerResponse } = await import('node:http');
  const { Socket } = await import('node:net');
  const req = new IncomingMessage(new Socket());
  Object.assign(req, { method: 'GET', url: path, headers: {} });
  req.push(null);
  const res = new ServerResponse(req);
  const chunks: Buffer[] = [];
  res.write = ((c: string | Buffer) => {
    chunks.push(Buffer.from(c));
    return true;
  }) as typeof res.write;
  const ended = new Promise<void>((resolve) => {
    res.end = ((c?: string | Buffer) => {
      if (c) chunks.push(Buffer.from(c));
      resolve();
      return res;
    }) as typeof res.end;
  });
  await app.callback()(req, res);
  await ended;
  const text = Buffer.concat(chunks).toString('utf8');
  return { status: res.statusCode, body: text.startsWith('{') ? JSON.parse(text) : text };
}

describe('log level control (SIGHUP)', () => {
  it('changes the root and the children made before the change', () => {
    const { log, lines } = capture();
    const control = new LogLevelControl(log);
    const child = log.child({ component: 'rpc' });
    const grandchild = child.child({ method: 'ping' });
    child.debug('hidden');
    reloadLogLevel(control, log, () => true);
    child.debug('shown');
    grandchild.debug('shown too');
    log.child({ component: 'later' }).debug('and later children');
    assert.deepEqual(
      lines.filter((l) => l.level === 20).map((l) => l.msg),
      ['shown', 'shown too', 'and later children'],
    );
    const changed = lines.find((l) => l.msg === 'SIGHUP: log level changed')!;
    assert.equal(changed.log_level, 'debug');
    assert.equal(changed.previous_log_level, 'info');
  });

  it('keeps the level when the configuration cannot be read', () => {
    const { log, lines } = capture();
    const control = new LogLevelControl(log);
    reloadLogLevel(control, log, () => {
      throw new Error('berth.conf: [DEFAULT] debug: not a boolean');
    });
    assert.equal(control.level, 'info');
    assert.match(String(lines.at(-1)!.err), /not a boolean/);
  });
});

describe('status app', () => {
  it('is ready only when every check answers in time, naming what is down', async () => {
    const app = createStatusApp({
      registry: new MetricsRegistry(),
      log: silentLogger(),
      probeTimeoutMs: 50,
      checks: [
        { name: 'broker', probe: () => Promise.resolve(true) },
        { name: 'database', probe: () => new Promise(() => undefined) },
        { name: 'agent', probe: () => Promise.resolve(false) },
      ],
    });
    const res = await get(app, '/readyz');
    assert.equal(res.status, 503);
    assert.deepEqual(res.body.error.details.down, ['database', 'agent']);
    assert.match(res.body.error.details.checks.database.reason, /no answer within 50 ms/);
    assert.equal((await get(app, '/healthz')).status, 200);
    assert.equal((await get(app, '/nothing')).status, 404);
  });
});

describe('driver metrics', () => {
  it('counts RPC outcomes, latency, builds in flight, failures and notifications', async () => {
    const m = new DriverMetrics(() => Promise.resolve([[{ vm_state: 'active' }, 2]]));
    const build = m.rpc.started('build_and_run_instance', false);
    assert.match(await m.registry.render(), /^berth_builds_in_flight 1$/m);
    build('ok');
    m.rpc.started('terminate_instance', false)(null);
    m.rpc.started('ping', true)('failure');
    m.rpc.skipped(null, false, 'malformed');
    m.rpc.skipped('build_and_run_instance', false, 'duplicate');
    m.instanceFailed('ImageNotFound');
    m.notificationSent();
    const text = await m.registry.render();
    assert.match(text, /^berth_builds_in_flight 0$/m);
    assert.match(text, /^berth_rpc_messages_total\{method="build_and_run_instance",kind="cast",outcome="ok"\} 1$/m);
    assert.match(text, /^berth_rpc_messages_total\{method="ping",kind="call",outcome="failure"\} 1$/m);
    assert.match(text, /^berth_rpc_messages_total\{method="unknown",kind="cast",outcome="malformed"\} 1$/m);
    assert.match(text, /^berth_rpc_messages_total\{method="build_and_run_instance",kind="cast",outcome="duplicate"\} 1$/m);
    assert.doesNotMatch(text, /terminate_instance/, 'a message handed back is counted when redelivered');
    assert.match(text, /^berth_rpc_duration_seconds_count\{method="ping"\} 1$/m);
    assert.match(text, /^berth_instance_failures_total\{code="ImageNotFound"\} 1$/m);
    assert.match(text, /^berth_instances\{vm_state="active"\} 2$/m);
    assert.match(text, /^berth_notifications_sent_total 1$/m);
  });
});
