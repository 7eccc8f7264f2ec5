import { BerthError } from '../../common/errors.js';
import { agentError } from '../errors.js';
import { STALE_NETWORK, type ContainerSpec } from './types.js';

/** Docker only notices a taken static address at start, answering "Address already in use". */
export function addressConflict(err: unknown, spec: ContainerSpec): unknown {
  const text = err instanceof BerthError && err.cause instanceof Error ? err.cause.message : '';
  if (!spec.network || !/address already in use/i.test(text)) return err;
  return addressInUse(spec.uuid, spec.network.ipv4, err);
}

export function addressInUse(uuid: string, ipv4: string, cause?: unknown): BerthError {
  return agentError('RUNTIME_ERROR', `address ${ipv4} of instance ${uuid} is already in use on its network`, { uuid, reason: STALE_NETWORK }, cause);
}
