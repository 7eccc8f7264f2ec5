import type { BerthError } from '../common/errors.js';
import { agentError, type AgentErrorCode } from './client/errors.js';

export { AGENT_ERROR_CODES, AGENT_ERRORS, agentError, isAgentErrorCode, type AgentErrorCode } from './client/errors.js';

export const instanceNotFound = (uuid: string): BerthError<AgentErrorCode> =>
  agentError('INSTANCE_NOT_FOUND', `instance ${uuid} not found on this host`, { uuid });

export const invalidState = (uuid: string, operation: string, state: string): BerthError<AgentErrorCode> =>
  agentError('INSTANCE_INVALID_STATE', `cannot ${operation} instance ${uuid} while it is ${state}`, { uuid, operation, state });
