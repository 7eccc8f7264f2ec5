import type { PeerCompute } from '../../driver/compute/peers.js';
import type { RequestContext } from '../../driver/rpc/envelope.js';
import type { Endpoint } from '../../driver/rpc/dispatcher.js';
import { deliver, TEST_CTX } from './driver-fixtures.js';

/**
 * Casts between the compute nodes of one unit test, delivered in process in the order they were
 * sent, each after the sender's turn of the event loop (as a broker would); `settle` waits until
 * none is left, a cast's failure is kept in `failures` and each cast is logged as
 * `from->host:method`.
 */
export class InProcessCasts {
  readonly log: string[] = [];
  readonly failures: unknown[] = [];
  private readonly inflight: Promise<unknown>[] = [];

  /** `endpoint`: the node's endpoint for a namespace (`berth`, or nova's compute API when none). */
  constructor(
    private readonly endpoint: (host: string, namespace: string | undefined) => Endpoint,
    private readonly ctx: RequestContext = TEST_CTX,
  ) {}

  /** The peers of the node `from`. */
  peers(from = ''): PeerCompute {
    return {
      cast: async (host, _ctx, method, args, opts = {}) => {
        this.log.push(`${from}->${host}:${method}`);
        const ep = this.endpoint(host, opts.namespace);
        const sent = new Promise((r) => setImmediate(r)).then(() => deliver(ep, { method, args }, this.ctx).catch((err: unknown) => this.failures.push(err)));
        this.inflight.push(sent);
      },
    };
  }

  async settle(): Promise<void> {
    while (this.inflight.length) await this.inflight.shift();
  }
}
