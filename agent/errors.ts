import { BerthError, type ErrorDetails } from '../common/errors.js';
import type { AgentErrorCode } from './client/types.js';

/** Builds an agent error; the status follows from the code so every raiser agrees on it. */
export function agentError(code: AgentErrorCode, message: string, details: ErrorDetails = {}, cause?: unknown): BerthError {
  return new BerthError(code, message, { status: STATUS[code], retryable: RETRYABLE.has(code), details, cause });
}

const STATUS: Record<AgentErrorCode, number> = {
  INSTANCE_NOT_FOUND: 404,
  INSTANCE_INVALID_STATE: 409,
  IMAGE_NOT_FOUND: 404,
  IMAGE_FETCH_FAILED: 502,
  INVALID_INPUT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  RUNTIME_UNAVAILABLE: 503,
  RUNTIME_ERROR: 500,
  SERVICE_UNREACHABLE: 503,
  SUBNET_POOL_EXHAUSTED: 503,
  SNAPSHOT_NOT_FOUND: 404,
  IMAGE_UPLOAD_FAILED: 502,
};

const RETRYABLE = new Set<AgentErrorCode>(['RUNTIME_UNAVAILABLE', 'SERVICE_UNREACHABLE']);

export const AGENT_ERROR_CODES: ReadonlySet<string> = new Set(Object.keys(STATUS));

export const instanceNotFound = (uuid: string): BerthError =>
  agentError('INSTANCE_NOT_FOUND', `instance ${uuid} not found on this host`, { uuid });

export const invalidState = (uuid: string, operation: string, state: string): BerthError =>
  agentError('INSTANCE_INVALID_STATE', `cannot ${operation} instance ${uuid} while it is ${state}`, { uuid, operation, state });
