import { BerthError } from '../../common/errors.js';
import { driverError } from '../../driver/errors.js';
import { hostLabel, openBrokerConnection, resolveBroker, type BrokerConnectOptions } from '../../driver/rpc/broker-connect.js';

/**
 * One connection attempt to each host of the broker at once, so a refusal is told apart at once:
 * the password refused (ACCESS_REFUSED), the connection refused, a TLS failure, or no answer
 * within `timeoutMs`. The first host that lets the client in is enough. A refused password is
 * BROKER_AUTH_REFUSED (exit code 1); every other cause BROKER_UNREACHABLE (exit code 3, a service is
 * unreachable); the message names the cause per host.
 */
export async function probeBroker(
  transportUrl: string,
  rabbit: BrokerConnectOptions,
  timeoutMs: number,
  /** One connection attempt (tests hand in their own). */
  open: typeof openBrokerConnection = openBrokerConnection,
): Promise<void> {
  // Credentials left out: the message names the hosts only.
  const shown = transportUrl.replace(/([/,])[^/,]*@/g, '$1');
  let broker;
  try {
    broker = resolveBroker(transportUrl, rabbit);
  } catch (err) {
    throw new BerthError('CONFIG_INVALID', (err as Error).message, { status: 400 });
  }
  const causes = await Promise.all(
    broker.url.hosts.map(async (host) => {
      let timer: NodeJS.Timeout | undefined;
      const attempt = open(broker, host, { connectionName: `berth-cli-probe:${process.pid}`, timeoutMs, heartbeatSeconds: 0 });
      const expired = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      try {
        const model = await Promise.race([attempt, expired]);
        if (model === 'timeout') {
          attempt.then((m) => m.close()).catch(() => undefined);
          return { host, auth: false, why: `no answer within ${timeoutMs / 1000}s (timeout)` };
        }
        await model.close().catch(() => undefined);
        return null;
      } catch (err) {
        return { host, ...classify(err, timeoutMs) };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  if (causes.some((c) => c === null)) return;
  const failed = causes.filter((c) => c !== null);
  const one = failed.length === 1;
  const per = failed.map((c) => (one ? c.why : `${hostLabel(c.host)}: ${c.why}`)).join('; ');
  if (failed.every((c) => c.auth)) {
    throw driverError('BROKER_AUTH_REFUSED', `the broker at ${shown} refused the user name or password (ACCESS_REFUSED): check [DEFAULT] transport_url`);
  }
  throw driverError('BROKER_UNREACHABLE', `cannot reach the broker at ${shown}: ${per}`);
}

function classify(err: unknown, timeoutMs: number): { auth: boolean; why: string } {
  const e = err as NodeJS.ErrnoException;
  const text = String(e.message ?? e);
  if (/ACCESS.REFUSED|403/.test(text)) return { auth: true, why: 'user name or password refused (ACCESS_REFUSED)' };
  if (e.code === 'BROKER_TLS_CONFIG') return { auth: false, why: text };
  if (e.code === 'ECONNREFUSED') return { auth: false, why: 'connection refused (nothing listens there)' };
  if (e.code === 'ETIMEDOUT' || /timeout|timed out/i.test(text)) return { auth: false, why: `no answer within ${timeoutMs / 1000}s (timeout)` };
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return { auth: false, why: `unknown host (${e.code})` };
  if (/certificate|SSL|TLS|self.signed|wrong version number/i.test(text) || /^ERR_TLS|^ERR_SSL|CERT/.test(e.code ?? '')) {
    return { auth: false, why: `TLS handshake failed: ${e.code ? `${e.code}: ` : ''}${text}` };
  }
  return { auth: false, why: e.code ? `${e.code}: ${text}` : text };
}
