import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { VifSpec } from '../client/types.js';
import type { HostNetworking } from './host-networking.js';

/**
 * A create on Neutron's ports, as nova plugs a VM's VIFs before the guest runs: the taps made on
 * their bridges (HostNetworking.preplug) while the container is created and started, so Neutron's
 * agent wires the ports meanwhile; the plug after the start (which waits for the taps: both run
 * under the instance's plug lock) moves the guest ends in. Taps that could not be made early are
 * made by that plug, the usual way. A create that fails leaves no pair behind.
 */
export async function createPreplugged<T>(
  net: Pick<HostNetworking, 'preplug' | 'release'>,
  uuid: string,
  vifs: VifSpec[],
  create: () => Promise<T>,
  log?: Logger,
): Promise<T> {
  const taps = net
    .preplug(uuid, vifs)
    .catch((err: unknown) => log?.warn({ uuid, err: describeError(err) }, 'taps not made before the start; the plug makes them'));
  try {
    const made = await create();
    await taps;
    return made;
  } catch (err) {
    await taps;
    await net.release(vifs).catch((e: unknown) => log?.warn({ uuid, err: describeError(e) }, 'could not remove the pairs of a failed create'));
    throw err;
  }
}
