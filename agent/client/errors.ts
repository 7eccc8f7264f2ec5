import { errorFactory, type ErrorCatalog, type ErrorFactory } from '../../common/errors.js';

/**
 * Every code the agent raises on purpose, declared once: the agent raises them through
 * `agentError`, its client keeps them when it rebuilds an answer, and docs/agent-openapi.json
 * lists them (tools/gen-docs.ts).
 */
export const AGENT_ERROR_CODES = [
  'INSTANCE_NOT_FOUND',
  'INSTANCE_INVALID_STATE',
  'IMAGE_NOT_FOUND',
  'IMAGE_FETCH_FAILED',
  'INVALID_INPUT',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'RUNTIME_UNAVAILABLE',
  'RUNTIME_ERROR',
  'SERVICE_UNREACHABLE',
  'SUBNET_POOL_EXHAUSTED',
  'SNAPSHOT_NOT_FOUND',
  'IMAGE_UPLOAD_FAILED',
  'CONSOLE_UNAVAILABLE',
  'CONSOLE_PORTS_EXHAUSTED',
  'VOLUME_NOT_FOUND',
  'VOLUME_IN_USE',
  'VOLUME_EXISTS',
  'VOLUME_QUOTA_EXCEEDED',
  'VOLUME_FAILED',
] as const;

export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];

/**
 * One status per code. Every agent code is exposed, 5xx included: the driver needs the agent's
 * own 5xx codes (RUNTIME_ERROR, IMAGE_FETCH_FAILED) to decide what to record, and their messages
 * are written to name the operation only.
 */
export const AGENT_ERRORS: ErrorCatalog<AgentErrorCode> = {
  INSTANCE_NOT_FOUND: { status: 404, expose: true },
  INSTANCE_INVALID_STATE: { status: 409, expose: true },
  IMAGE_NOT_FOUND: { status: 404, expose: true },
  IMAGE_FETCH_FAILED: { status: 502, expose: true },
  INVALID_INPUT: { status: 400, expose: true },
  UNAUTHORIZED: { status: 401, expose: true },
  FORBIDDEN: { status: 403, expose: true },
  RUNTIME_UNAVAILABLE: { status: 503, retryable: true, expose: true },
  RUNTIME_ERROR: { status: 500, expose: true },
  SERVICE_UNREACHABLE: { status: 503, retryable: true, expose: true },
  SUBNET_POOL_EXHAUSTED: { status: 503, expose: true },
  SNAPSHOT_NOT_FOUND: { status: 404, expose: true },
  IMAGE_UPLOAD_FAILED: { status: 502, expose: true },
  // Consoles disabled, or an instance created without an open stdin (docs/agent-api.md).
  CONSOLE_UNAVAILABLE: { status: 409, expose: true },
  CONSOLE_PORTS_EXHAUSTED: { status: 503, expose: true },
  // Local volumes (agent/volumes/, docs/volumes.md). Another project's volume is VOLUME_NOT_FOUND:
  // a project never learns that a volume it does not own exists.
  VOLUME_NOT_FOUND: { status: 404, expose: true },
  VOLUME_IN_USE: { status: 409, expose: true },
  VOLUME_EXISTS: { status: 409, expose: true },
  VOLUME_QUOTA_EXCEEDED: { status: 403, expose: true },
  VOLUME_FAILED: { status: 500, expose: true },
};

const KNOWN: ReadonlySet<string> = new Set(AGENT_ERROR_CODES);

export function isAgentErrorCode(code: string): code is AgentErrorCode {
  return KNOWN.has(code);
}

/** Builds an agent error; the status follows from the code so every raiser agrees on it. */
export const agentError: ErrorFactory<AgentErrorCode> = errorFactory(AGENT_ERRORS);
