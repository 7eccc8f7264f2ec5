import { connect } from 'amqplib';
import { BerthError } from '../../common/errors.js';
import { toAmqpUrl } from '../../driver/rpc/transport.js';

/**
 * One connection attempt to the broker, so a refusal is told apart at once: the password refused
 * (ACCESS_REFUSED), the connection refused, or no answer within `timeoutMs`. Exit code 3 (a
 * service is unreachable) for all three; the message names the cause.
 */
export async function probeBroker(transportUrl: string, timeoutMs: number): Promise<void> {
  const shown = transportUrl.replace(/\/\/[^@]*@/, '//');
  const unreachable = (why: string) => new BerthError('BROKER_UNREACHABLE', `cannot reach the broker at ${shown}: ${why}`, { status: 503 });
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unreachable(`no answer within ${timeoutMs / 1000}s (timeout)`)), timeoutMs);
  });
  const attempt = connect(toAmqpUrl(transportUrl, 0), { timeout: timeoutMs });
  try {
    const model = await Promise.race([attempt, expired]);
    await model.close().catch(() => undefined);
  } catch (err) {
    if (err instanceof BerthError) {
      attempt
        .then(
          (m) => m.close(),
          () => undefined,
        )
        .catch(() => undefined);
      throw err;
    }
    const e = err as NodeJS.ErrnoException;
    const text = String(e.message ?? e);
    if (/ACCESS.REFUSED|403/.test(text)) {
      throw new BerthError('BROKER_AUTH_REFUSED', `the broker at ${shown} refused the user name or password (ACCESS_REFUSED): check [DEFAULT] transport_url`, {
        status: 503,
      });
    }
    if (e.code === 'ECONNREFUSED') throw unreachable('connection refused (nothing listens there)');
    if (e.code === 'ETIMEDOUT' || /timeout|timed out/i.test(text)) throw unreachable(`no answer within ${timeoutMs / 1000}s (timeout)`);
    if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') throw unreachable(`unknown host (${e.code})`);
    throw unreachable(e.code ? `${e.code}: ${text}` : text);
  } finally {
    clearTimeout(timer);
  }
}
