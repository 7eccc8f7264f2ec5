import { encodeEnvelope, flattenContext, newUniqueId, type RequestContext } from '../rpc/envelope.js';
import type { Transport } from '../rpc/transport.js';

/**
 * Casts to another compute node, as nova-compute's ComputeAPI does between the two ends of a move
 * (prep_resize on the destination casts resize_instance to the source, which casts finish_resize
 * back): an oslo cast to `compute.<host>` on the control exchange, the request's context along.
 */
export interface PeerCompute {
  cast(host: string, ctx: RequestContext, method: string, args: Record<string, unknown>, opts?: { namespace?: string; version?: string }): Promise<void>;
}

export function transportPeers(transport: Pick<Transport, 'publish'>, exchange: string): PeerCompute {
  return {
    async cast(host, ctx, method, args, opts = {}) {
      const message = {
        method,
        args,
        version: opts.version ?? '6.0',
        ...(opts.namespace ? { namespace: opts.namespace } : {}),
        ...flattenContext(ctx),
        _unique_id: newUniqueId(),
      };
      await transport.publish(exchange, `compute.${host}`, encodeEnvelope(message));
    },
  };
}
