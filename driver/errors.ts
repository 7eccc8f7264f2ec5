import { errorFactory, type ErrorCatalog, type ErrorFactory } from '../common/errors.js';

/**
 * Every code the compute driver raises on purpose, declared once and raised through
 * `driverError`. Over RPC they go back in oslo's failure format (driver/rpc/failure.ts): a
 * `nova.exception.NovaException` whose kwargs carry the HTTP-style `code` and `berth_code`; a
 * Berth caller (driver/rpc/caller.ts) rebuilds `berth_code` as the error's code.
 */
export const DRIVER_ERROR_CODES = [
  // The control plane.
  'INSTANCE_NOT_FOUND',
  'NODE_NOT_REGISTERED',
  'PLACEMENT_CONFLICT',
  // The broker.
  'RPC_TIMEOUT',
  'BROKER_UNREACHABLE',
  'BROKER_AUTH_REFUSED',
  // Snapshots the agent runs for the driver.
  'SNAPSHOT_TIMEOUT',
  'SNAPSHOT_LOST',
  'SNAPSHOT_FAILED',
  // A move the instance's local volumes cannot follow (driver/compute/local-volumes.ts).
  'LOCAL_VOLUMES_ATTACHED',
] as const;

export type DriverErrorCode = (typeof DRIVER_ERROR_CODES)[number];

/** One status per code (the `code` a failure carries over RPC), and whether a retry may succeed. */
export const DRIVER_ERRORS: ErrorCatalog<DriverErrorCode> = {
  INSTANCE_NOT_FOUND: { status: 404 },
  NODE_NOT_REGISTERED: { status: 503, retryable: true },
  PLACEMENT_CONFLICT: { status: 409 },
  RPC_TIMEOUT: { status: 504, retryable: true },
  BROKER_UNREACHABLE: { status: 503, retryable: true },
  // The broker refused the credentials of [DEFAULT] transport_url: no retry helps.
  BROKER_AUTH_REFUSED: { status: 503 },
  SNAPSHOT_TIMEOUT: { status: 504 },
  SNAPSHOT_LOST: { status: 500 },
  SNAPSHOT_FAILED: { status: 500 },
  LOCAL_VOLUMES_ATTACHED: { status: 409 },
};

const KNOWN: ReadonlySet<string> = new Set(DRIVER_ERROR_CODES);

export function isDriverErrorCode(code: string): code is DriverErrorCode {
  return KNOWN.has(code);
}

/** Builds a driver error; the status follows from the code so every raiser agrees on it. */
export const driverError: ErrorFactory<DriverErrorCode> = errorFactory(DRIVER_ERRORS);
