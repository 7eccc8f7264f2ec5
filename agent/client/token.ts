import { readFileSync } from 'node:fs';
import { join } from 'node:path';

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
