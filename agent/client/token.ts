import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { keystoneSession, type KeystoneCredentials, type KeystoneSession } from '../../common/keystone/index.js';

/** Where the agent keeps the token it generated when none is configured. */
export function agentTokenFile(statePath: string): string {
  return join(statePath, 'agent.token');
}

/** The token to present to the agent: the configured one, else the one the agent generated. */
export function readAgentToken(configured: string, statePath: string): string {
  if (configured) return configured;
  try {
    return readFileSync(agentTokenFile(statePath), 'utf8').trim();
  } catch {
    return '';
  }
}

/** What a client of the agent needs from the configuration to authenticate. */
export interface AgentClientAuthConfig {
  agent: { token: string; auth_strategy: 'token' | 'keystone' | 'token+keystone' };
  DEFAULT: { state_path: string };
  keystone_authtoken: KeystoneCredentials;
}

/**
 * The credentials to present to the agent under `[agent] auth_strategy`: the bearer token; with
 * keystone, a session of the `[keystone_authtoken]` user (the agent validates with the same one);
 * with token+keystone, the bearer token when this host has it, else that session.
 */
export function agentClientAuth(c: AgentClientAuthConfig): { token: string; session?: KeystoneSession } {
  const token = c.agent.auth_strategy === 'keystone' ? '' : readAgentToken(c.agent.token, c.DEFAULT.state_path);
  if (c.agent.auth_strategy === 'token' || token) return { token };
  return { token: '', session: keystoneSession(c.keystone_authtoken) };
}
