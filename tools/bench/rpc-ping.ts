/**
 * RPC round trip (issue 3, benchmark c): baseapi `ping` calls against berth-compute (its own
 * process) and against a stock oslo.messaging Python server on the same broker, both from the
 * same client with one persistent reply queue; sequential calls, alternating between the two
 * servers so that background load falls on both alike.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { requestContext } from '../lib/nova-requests.js';
import { projectRoot } from '../lib/paths.js';
import { AMQP_URL, BenchClient } from './lib/amqp-client.js';
import { startDriverProcess } from './lib/driver-process.js';
import { elapsedMs, printResult, printTable, summarize } from './lib/report.js';
import { runBench, type BenchRun } from './lib/run.js';
import { startStubAgent } from './lib/stub-agent.js';

// 2000: the p99 of 500 calls is the 5th-slowest call, which this machine's noise alone moves by ±30%.
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const WARMUP = 50;
const TARGET = 1.0;
const CALL_TIMEOUT_MS = 10_000;

interface Server {
  exchange: string;
  routingKey: string;
}

/** Starts oslo_ping_server.py and resolves once it says it consumes. */
async function startOsloServer(run: BenchRun, client: BenchClient, id: string): Promise<Server> {
  const exchange = `berth-bench-oslo-${id}`;
  const topic = `bench-ping-${id}`;
  const server = `oslo-${id}`;
  const child = spawn(
    '/usr/bin/python3',
    [`${projectRoot()}/tools/bench/oslo_ping_server.py`, AMQP_URL.replace(/^amqp:/, 'rabbit:') + '/', exchange, topic, server, '1200'],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  run.cleanup(async () => {
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    await client.removeTopology({ queues: [topic, `${topic}.${server}`], exchanges: [exchange, `${topic}_fanout`] });
  });
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`oslo server not ready within 30 s: ${stderr}`)), 30_000);
    lines.on('line', (l) => {
      if (l.trim() === 'ready') {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(() => reject(new Error(`oslo server exited: ${stderr}`)));
  });
  return { exchange, routingKey: `${topic}.${server}` };
}

function pingMessage(arg: string): Record<string, unknown> {
  const msg: Record<string, unknown> = { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg } };
  for (const [k, v] of Object.entries(requestContext())) msg[`_context_${k}`] = v;
  return msg;
}

async function ping(client: BenchClient, s: Server, arg: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const reply = await client.call(s.exchange, s.routingKey, pingMessage(arg), CALL_TIMEOUT_MS);
  const ms = elapsedMs(t0);
  const result = reply.result as { service?: unknown; arg?: unknown } | undefined;
  if (result?.arg !== arg || result.service !== 'compute') throw new Error(`unexpected ping reply from ${s.routingKey}: ${JSON.stringify(reply)}`);
  return ms;
}

runBench('rpc-ping', 10 * 60_000, async (run) => {
  const id = randomUUID().slice(0, 8);
  const client = await BenchClient.open();
  run.cleanup(() => client.close());
  // ping never reaches the agent; the stub only lets the driver start without a real one.
  const agent = await startStubAgent(randomUUID());
  run.cleanup(() => agent.close());
  const driver = await startDriverProcess({ agentUrl: agent.url, agentToken: agent.token, amqpUrl: AMQP_URL });
  run.cleanup(async () => {
    await driver.stop();
    await client.removeTopology({ queues: [`compute.${driver.host}`], exchanges: [driver.exchange] });
  });
  run.log(`driver pid ${driver.pid}: ${driver.runtime}`);
  await client.waitForQueue(`compute.${driver.host}`, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${driver.logTail()}`);
  });
  const berth: Server = { exchange: driver.exchange, routingKey: `compute.${driver.host}` };
  const oslo = await startOsloServer(run, client, id);

  run.log(`warm-up: ${WARMUP} calls each`);
  for (let i = 0; i < WARMUP; i++) {
    await ping(client, berth, `w${i}`);
    await ping(client, oslo, `w${i}`);
  }
  const berthMs: number[] = [];
  const osloMs: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    berthMs.push(await ping(client, berth, `b${i}`));
    osloMs.push(await ping(client, oslo, `o${i}`));
  }
  const b = summarize(berthMs);
  const o = summarize(osloMs);
  const row = (server: string, s: typeof b) => ({ server, n: s.n, 'p50 ms': s.median, 'p90 ms': s.p90, 'p99 ms': s.p99, 'max ms': s.max });
  printTable(`baseapi ping round trip, ${CALLS} sequential calls each after ${WARMUP} warm-up, one client, one reply queue`, [
    row(`berth-compute (${driver.runtime.split(' (')[0]})`, b),
    row('stock oslo.messaging server (python3, threading executor)', o),
  ]);
  return printResult('rpc-ping', [
    { metric: 'ratio_p50', value: b.median / o.median, target: TARGET },
    { metric: 'ratio_p99', value: b.p99 / o.p99, target: TARGET },
  ]);
});
