import { BerthError } from '../../../common/errors.js';
import { agentClientAuth } from '../../../agent/client/token.js';
import { createVolumeClient } from '../../../agent/client/volumes-http.js';
import { refuseByMirror, refuseMoveWithVolumes, type VolumeMove } from '../../../driver/compute/local-volumes.js';
import type { CliContext } from '../context.js';
import type { ServerView } from './server-lookup.js';

/**
 * Before a move is sent: an instance with local volumes attached is refused here with the
 * driver's own error (LOCAL_VOLUMES_ATTACHED, the volumes named, "detach them first"), from its
 * host's mirror in system_metadata, and from this node's agent when the instance is on this node
 * (`host`: where it is). The node refuses the move again itself (driver/compute/local-volumes.ts).
 */
export async function refuseLocalVolumes(ctx: CliContext, view: ServerView, host: string | null, move: VolumeMove): Promise<void> {
  refuseByMirror(view.uuid, move, view.system_metadata);
  if (host === null || host !== ctx.config.DEFAULT.host) return;
  try {
    await refuseMoveWithVolumes(createVolumeClient({ url: ctx.config.agent.url, ...agentClientAuth(ctx.config), timeoutMs: 60_000 }), view.uuid, move);
  } catch (err) {
    // Advice before sending, not the check: an agent this configuration does not reach (another
    // URL, another token) leaves it to the node, which refuses the move itself.
    if (err instanceof BerthError && err.code === 'LOCAL_VOLUMES_ATTACHED') throw err;
  }
}
