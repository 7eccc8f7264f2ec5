import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { newUniqueId } from '../../driver/rpc/envelope.js';
import { waitUntil } from './waits.js';

const run = promisify(execFile);

/**
 * A private RabbitMQ node on loopback (the same rabbitmq-server the other tests use, as a second
 * node with its own port, name and data directory), for tests that restart the broker: restarting
 * the shared node would break every other client of it.
 */
export interface RabbitNode {
  name: string;
  port: number;
  amqpUrl: string;
  transportUrl: string;
  /** stop_app + start_app: every connection is dropped and non-durable queues are lost, as in a real restart. */
  restart(): Promise<{ downMs: number }>;
  /** A fresh vhost for guest, so runs with different queue flags do not collide; returns its URLs. */
  addVhost(vhost: string): Promise<{ amqpUrl: string; transportUrl: string }>;
  /** Ready and unacked messages of a queue, from the broker itself. */
  queueDepth(queue: string, vhost?: string): Promise<{ ready: number; unacked: number } | null>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

const ctl = (node: string, ...args: string[]) => run('rabbitmqctl', ['-n', node, '-q', ...args], { timeout: 60_000 });

export async function startRabbitNode(): Promise<RabbitNode> {
  const name = `berth-it-${newUniqueId().slice(0, 8)}@localhost`;
  const [port, distPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'berth-rabbit-'));
  // rabbitmq-server drops to the rabbitmq user, which must write its data here.
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.default = 127.0.0.1:${port}\nloopback_users.guest = true\n`);
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  const env = {
    ...process.env,
    RABBITMQ_NODENAME: name,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
  const stop = async () => {
    await ctl(name, 'shutdown').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run('rabbitmq-server', ['-detached'], { env, timeout: 30_000 });
    // The node registers with epmd a few seconds after -detached returns.
    await waitUntil(
      async () => {
        await ctl(name, 'await_startup', '--timeout', '5');
        return true;
      },
      60_000,
      `RabbitMQ node ${name}`,
      250,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    name,
    port,
    amqpUrl: `amqp://guest:guest@127.0.0.1:${port}`,
    transportUrl: `rabbit://guest:guest@127.0.0.1:${port}/`,
    async restart() {
      const t0 = Date.now();
      await ctl(name, 'stop_app');
      await ctl(name, 'start_app');
      return { downMs: Date.now() - t0 };
    },
    async addVhost(vhost) {
      await ctl(name, 'add_vhost', vhost);
      await ctl(name, 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
      return { amqpUrl: `amqp://guest:guest@127.0.0.1:${port}/${vhost}`, transportUrl: `rabbit://guest:guest@127.0.0.1:${port}/${vhost}` };
    },
    async queueDepth(queue, vhost = '/') {
      const { stdout } = await ctl(name, 'list_queues', '-p', vhost, '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged');
      for (const line of stdout.split('\n')) {
        const [q, ready, unacked] = line.trim().split(/\s+/);
        if (q === queue) return { ready: Number(ready), unacked: Number(unacked) };
      }
      return null;
    },
    stop,
  };
}
