import type { Agent } from 'node:http';
import { commonError } from '../errors.js';
import { keystoneSession } from './session.js';
import type { KeystoneCredentials, TokenValidator } from './types.js';
import { tokenValidator } from './validator.js';

/**
 * Validation of incoming tokens by the `[keystone_authtoken]` service user, for a service whose
 * `setting` (e.g. `[agent] auth_strategy = keystone`) asks for it; stops start-up naming what is
 * missing when that user is not configured. `agent`: the validator's connection pool (tests).
 */
export function incomingValidator(setting: string, ks: KeystoneCredentials, agent?: Agent): { validator: TokenValidator; authUri: string } {
  const missing = (['auth_url', 'username', 'password'] as const).filter((k) => !ks[k]);
  if (missing.length) {
    throw commonError('INVALID_CONFIG', `${setting} needs [keystone_authtoken] ${missing.join(', ')} (the service user that validates tokens)`, { missing });
  }
  return { validator: tokenValidator({ authUrl: ks.auth_url, session: keystoneSession(ks), ...(agent ? { agent } : {}) }), authUri: ks.auth_url };
}
