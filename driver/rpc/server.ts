import type { Logger } from '../../common/log.js';
import { decodeBody, encodeEnvelope, MalformedMessage, newUniqueId, parseRequest, type RpcRequest } from './envelope.js';
import { novaError, RpcFailure, serializeFailure, toRpcFailure } from './failure.js';
import type { Dispatcher } from './dispatcher.js';
import { declareRpcServerQueues, newFanoutQueueName, type RabbitDeclareOptions } from './topology.js';
import { MessageUndeliverable, type Delivery, type Transport } from './transport.js';
import { Semaphore } from '../../common/semaphore.js';
import { SingleFlight } from '../../common/single-flight.js';

/**
 * Durable memory of processed messages, so that a redelivered message (same `_unique_id`) is not
 * run twice. oslo keeps the last 16 ids in memory; Berth keeps them in its database because it
 * acks only after the effect is recorded.
 */
export interface MessageLog {
  seen(uniqueId: string): Promise<boolean>;
  record(uniqueId: string, method: string): Promise<void>;
  /** Makes everything recorded so far durable; awaited before a reply or an ack leaves. */
  durable(): Promise<void>;
}

export interface RpcServerOptions {
  exchange: string;
  topic: string;
  server: string;
  rabbit: RabbitDeclareOptions;
  maxMessageBytes: number;
  maxConcurrentLong: number;
  log: Logger;
  messageLog?: MessageLog;
  observer?: RpcObserver;
  /** How long a reply is retried while the caller's reply queue is missing (kombu_missing_consumer_retry_timeout), in ms. */
  missingReplyQueueRetryMs?: number;
}

/**
 * Hooks for metrics. `started` returns what to call when the request ends: with its outcome, or
 * with null when it was handed back for redelivery (the redelivered copy is counted instead).
 */
export interface RpcObserver {
  started(method: string, call: boolean): (outcome: 'ok' | 'failure' | null) => void;
  /** A message not run: malformed ones have no method. */
  skipped(method: string | null, call: boolean, outcome: 'malformed' | 'duplicate'): void;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RpcStats {
  received: number;
  malformed: number;
  duplicates: number;
  failures: number;
  requeued: number;
  inFlight: number;
}

/**
 * An oslo RPC server: consumes `<topic>`, `<topic>.<server>` and the fanout queue, dispatches each
 * request, replies to calls (with call-monitor heartbeats) and acks only once the work is done.
 */
export class RpcServer {
  readonly stats: RpcStats = { received: 0, malformed: 0, duplicates: 0, failures: 0, requeued: 0, inFlight: 0 };
  private readonly fanoutQueue: string;
  private readonly longOps: Semaphore;
  /** Messages being processed, by unique id: a redelivered duplicate waits for the first. */
  private readonly processing = new SingleFlight<void>();
  private stopping = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly transport: Transport,
    private readonly dispatcher: Dispatcher,
    private readonly opts: RpcServerOptions,
  ) {
    this.fanoutQueue = newFanoutQueueName(opts.topic);
    this.longOps = new Semaphore(opts.maxConcurrentLong);
    transport.onConnect((ch) => declareRpcServerQueues(ch, opts.exchange, opts.topic, opts.server, opts.rabbit, this.fanoutQueue).then(() => undefined));
    for (const q of [opts.topic, `${opts.topic}.${opts.server}`, this.fanoutQueue]) {
      transport.consume(q, (d) => {
        void this.onDelivery(d);
      });
    }
  }

  get queues(): string[] {
    return [this.opts.topic, `${this.opts.topic}.${this.opts.server}`, this.fanoutQueue];
  }

  private async onDelivery(d: Delivery): Promise<void> {
    this.stats.received++;
    if (this.stopping) return; // left unacked: redelivered to another consumer or after restart
    const log = this.opts.log;
    if (d.body.length > this.opts.maxMessageBytes) return this.reject(d, `message of ${d.body.length} bytes exceeds max_message_bytes`);
    if (d.contentType !== 'application/json') return this.reject(d, `content type ${JSON.stringify(d.contentType ?? null)} is not application/json`);
    let req: RpcRequest;
    try {
      req = parseRequest(decodeBody(d.body));
    } catch (err) {
      const reply = (err as { reply?: RpcRequest['reply'] }).reply;
      if (err instanceof MalformedMessage && reply) {
        // A call we can answer: tell the caller instead of letting it time out.
        await this.sendReply(reply, null, novaError('InvalidInput', 400, `Invalid input received: ${err.message}`, { reason: err.message })).catch(
          () => undefined,
        );
      }
      return this.reject(d, (err as Error).message, Boolean(reply));
    }
    const key = req.uniqueId;
    if (key) {
      const running = this.processing.get(key);
      if (running) {
        this.stats.duplicates++;
        this.opts.observer?.skipped(req.method, req.reply !== null, 'duplicate');
        await running;
        d.ack();
        return;
      }
    }
    const run = (): Promise<void> =>
      this.process(req, d).finally(() => {
        if (--this.stats.inFlight === 0) this.idleWaiters.splice(0).forEach((w) => w());
      });
    this.stats.inFlight++;
    const work = key ? this.processing.run(key, run) : run();
    await work.catch((err) => {
      // Never leave a delivery unsettled: it would sit unacked until the connection drops, then
      // come back and fail again. A message that breaks the server is a poison message.
      log.error({ err }, 'unexpected error processing a message; dropped');
      d.drop();
    });
  }

  private reject(d: Delivery, why: string, call = false): void {
    this.stats.malformed++;
    this.opts.observer?.skipped(null, call, 'malformed');
    this.opts.log.warn({ queue: d.queue, why }, 'dropping malformed message');
    d.drop();
  }

  private async process(req: RpcRequest, d: Delivery): Promise<void> {
    const log = this.opts.log.child({ method: req.method, request_id: req.context.request_id, call: req.reply !== null });
    if (req.uniqueId && !req.reply && this.opts.messageLog && (await this.opts.messageLog.seen(req.uniqueId))) {
      this.stats.duplicates++;
      this.opts.observer?.skipped(req.method, false, 'duplicate');
      log.info({ unique_id: req.uniqueId }, 'duplicate message dropped');
      d.ack();
      return;
    }
    log.debug({ unique_id: req.uniqueId, namespace: req.namespace }, 'dispatching');
    const heartbeat = this.startHeartbeat(req);
    let result: unknown = null;
    let failure: RpcFailure | null = null;
    const settled = this.opts.observer?.started(req.method, req.reply !== null);
    try {
      const found = this.dispatcher.resolve(req);
      const run = () => Promise.resolve(found.spec.handler(req.context, found.args));
      result = found.spec.long ? await this.longOps.run(run) : await run();
      if (req.uniqueId && !req.reply && this.opts.messageLog) await this.opts.messageLog.record(req.uniqueId, req.method);
    } catch (err) {
      if (isTransient(err) && !d.redelivered) {
        // The database was briefly unavailable: the broker redelivers the message once, and the
        // operation, idempotent, runs again. A second failure is answered like any other.
        heartbeat?.stop();
        this.stats.requeued++;
        log.warn({ err: (err as Error).message }, 'transient failure; message handed back for redelivery');
        d.requeue();
        settled?.(null);
        return;
      }
      failure = toRpcFailure(err);
      this.stats.failures++;
      if (failure.expected) log.info({ failure: failure.className, message: failure.message }, 'request failed');
      else log.error({ err }, 'request failed');
    } finally {
      heartbeat?.stop();
    }
    try {
      await this.opts.messageLog?.durable();
    } catch (err) {
      // Nothing is answered or acknowledged that might not survive a crash of the machine.
      log.error({ err: (err as Error).message }, 'could not make the recorded work durable; message handed back for redelivery');
      settled?.(null);
      d.requeue();
      return;
    }
    settled?.(failure ? 'failure' : 'ok');
    if (req.reply) await this.sendReply(req.reply, result, failure).catch((err) => log.warn({ err: (err as Error).message }, 'reply not sent'));
    d.ack();
  }

  private startHeartbeat(req: RpcRequest): { stop(): void } | null {
    const monitor = req.reply?.monitorTimeout;
    if (!req.reply || !monitor || Math.trunc(monitor) / 2 < 1) return null;
    const reply = req.reply;
    // Node runs a timer longer than 2^31-1 ms after 1 ms: a caller's huge _timeout would turn
    // into a flood of heartbeats instead of none.
    const intervalMs = Math.min((Math.trunc(monitor) / 2) * 1000, MAX_TIMER_MS);
    const timer = setInterval(() => {
      void this.transport
        .publish('', reply.replyQueue, encodeEnvelope({ result: null, failure: null, ending: false, _msg_id: reply.msgId, _unique_id: newUniqueId() }), {
          mandatory: true,
        })
        .catch(() => undefined);
    }, intervalMs);
    return { stop: () => clearInterval(timer) };
  }

  private async sendReply(reply: NonNullable<RpcRequest['reply']>, result: unknown, failure: RpcFailure | null): Promise<void> {
    const encode = (r: unknown, f: RpcFailure | null) =>
      encodeEnvelope({
        result: f ? null : (r ?? null),
        failure: f ? serializeFailure(f) : null,
        ending: true,
        _msg_id: reply.msgId,
        _unique_id: newUniqueId(),
      });
    let body: Buffer;
    try {
      body = encode(result, failure);
    } catch (err) {
      // A result that cannot be encoded (e.g. a value echoed back nested too deep for the encoder)
      // is still answered, with the error Python's json.dumps would raise.
      this.stats.failures++;
      body = encode(null, new RpcFailure('ValueError', 'builtins', `the result could not be serialized: ${(err as Error).message}`));
    }
    // The caller's reply queue can be missing for a while: the caller is failing over to another
    // broker node and has not declared it there yet. oslo retries every 0.25 s, then abandons.
    const deadline = Date.now() + (this.opts.missingReplyQueueRetryMs ?? 60_000);
    for (;;) {
      try {
        return await this.transport.publish('', reply.replyQueue, body, { mandatory: true });
      } catch (err) {
        if (!(err instanceof MessageUndeliverable) || Date.now() >= deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** Stops taking new work and waits (up to `timeoutMs`) for the work in hand to finish. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    if (this.stats.inFlight === 0) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }
}

const TRANSIENT_DB_ERRORS = new Set([
  'SequelizeConnectionError',
  'SequelizeConnectionRefusedError',
  'SequelizeHostNotReachableError',
  'SequelizeConnectionTimedOutError',
  'SequelizeConnectionAcquireTimeoutError',
  'SequelizeTimeoutError',
]);

/** Database errors worth one more try: lost connections, lock timeouts, serialization failures. */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  if (!e || typeof e.name !== 'string') return false;
  if (TRANSIENT_DB_ERRORS.has(e.name)) return true;
  return e.name === 'SequelizeDatabaseError' && /SQLITE_BUSY|SQLITE_LOCKED|deadlock detected|could not serialize/i.test(e.message ?? '');
}
