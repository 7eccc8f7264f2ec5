/**
 * Errors as data. Every error Berth raises on purpose carries a stable `code`, a message for
 * humans, an HTTP status for the HTTP boundaries and a `retryable` mark. They cross process
 * boundaries as `{"error": {"code", "message", "details"}}` over HTTP and in oslo's failure format
 * over RPC (driver/rpc/failure.ts); receivers rebuild only the codes they know.
 */
export type ErrorDetails = Record<string, unknown>;

export interface BerthErrorOptions {
  status?: number;
  retryable?: boolean;
  /**
   * Koa's mark: the code and message may be shown to the client. By default a status below 500
   * or a retryable error is shown; any other 5xx is answered as a bare INTERNAL_ERROR.
   */
  expose?: boolean;
  details?: ErrorDetails;
  cause?: unknown;
}

/**
 * `C` is the union of the codes a module raises (e.g. AgentErrorCode), so that `switch (err.code)`
 * narrows; errors rebuilt from a peer's answer are `BerthError<string>`.
 */
export class BerthError<C extends string = string> extends Error {
  readonly code: C;
  readonly status: number;
  readonly retryable: boolean;
  readonly expose: boolean;
  readonly details: ErrorDetails;

  constructor(code: C, message: string, opts: BerthErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BerthError';
    this.code = code;
    this.status = opts.status ?? 500;
    this.retryable = opts.retryable ?? false;
    this.expose = opts.expose ?? (this.status < 500 || this.retryable);
    this.details = opts.details ?? {};
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetails };
}

/** What a code means at the HTTP boundary: its one status, and whether a retry may succeed. */
export interface CodeSpec {
  status: number;
  retryable?: boolean;
  /** Show the message even for a 5xx that is not retryable (see BerthErrorOptions.expose). */
  expose?: boolean;
}

/** Every code a module raises, with its one status. */
export type ErrorCatalog<C extends string> = Readonly<Record<C, CodeSpec>>;

export type ErrorFactory<C extends string> = (code: C, message: string, details?: ErrorDetails, cause?: unknown) => BerthError<C>;

/** The one way to raise a catalogued code: its status and retryability come from the catalog. */
export function errorFactory<C extends string>(catalog: ErrorCatalog<C>): ErrorFactory<C> {
  return (code, message, details = {}, cause) => {
    const spec = catalog[code];
    return new BerthError(code, message, {
      status: spec.status,
      retryable: spec.retryable ?? false,
      details,
      cause,
      ...(spec.expose === undefined ? {} : { expose: spec.expose }),
    });
  };
}

/** True when `err` is a BerthError carrying `code`; narrows its type. */
export function hasErrorCode<C extends string>(err: unknown, code: C): err is BerthError<C> {
  return err instanceof BerthError && err.code === code;
}

/**
 * Codes raised by the shared HTTP plumbing (common/koa.ts, common/http-client.ts) in every
 * service, whatever its own catalog.
 */
export const COMMON_ERROR_CODES = [
  'INVALID_INPUT',
  'BAD_REQUEST',
  'NOT_FOUND',
  'UNAUTHORIZED',
  'METHOD_NOT_ALLOWED',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'INTERNAL_ERROR',
  'UPSTREAM_ERROR',
  'UPSTREAM_BAD_RESPONSE',
  'RESPONSE_TOO_LARGE',
  'SERVICE_UNREACHABLE',
  'SERVICE_TIMEOUT',
  'INVALID_CONFIG',
  'INVALID_URL',
  'AUTH_FAILED',
  'AUTH_REQUIRED',
  'AUTH_INVALID_TOKEN',
  'ENDPOINT_NOT_FOUND',
  'NOT_READY',
] as const;
export type CommonErrorCode = (typeof COMMON_ERROR_CODES)[number];

export const COMMON_ERRORS: ErrorCatalog<CommonErrorCode> = {
  INVALID_INPUT: { status: 400 },
  BAD_REQUEST: { status: 400 },
  NOT_FOUND: { status: 404 },
  UNAUTHORIZED: { status: 401 },
  METHOD_NOT_ALLOWED: { status: 405 },
  BODY_TOO_LARGE: { status: 413 },
  UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  INTERNAL_ERROR: { status: 500 },
  // A peer's error Berth does not know; errorFromBody marks it retryable when the peer's status was 5xx.
  UPSTREAM_ERROR: { status: 502 },
  UPSTREAM_BAD_RESPONSE: { status: 502 },
  RESPONSE_TOO_LARGE: { status: 502 },
  SERVICE_UNREACHABLE: { status: 503, retryable: true },
  SERVICE_TIMEOUT: { status: 504, retryable: true },
  // Configuration that cannot work (found at start-up).
  INVALID_CONFIG: { status: 400 },
  INVALID_URL: { status: 400 },
  // Keystone refused this service's own credentials: a deployment fault, not the caller's.
  AUTH_FAILED: { status: 502 },
  AUTH_REQUIRED: { status: 401 },
  AUTH_INVALID_TOKEN: { status: 401 },
  ENDPOINT_NOT_FOUND: { status: 502 },
  // /readyz: a dependency of the service does not answer (the body names which).
  NOT_READY: { status: 503, retryable: true },
};

export const commonError: ErrorFactory<CommonErrorCode> = errorFactory(COMMON_ERRORS);

export const invalidInput = (message: string, details: ErrorDetails = {}): BerthError => new BerthError('INVALID_INPUT', message, { status: 400, details });

export const notFound = (code: string, message: string, details: ErrorDetails = {}): BerthError => new BerthError(code, message, { status: 404, details });

/** The body a 5xx sends: never the internals of what went wrong. */
export function internalErrorBody(): ErrorBody {
  return { error: { code: 'INTERNAL_ERROR', message: 'internal error', details: {} } };
}

/** Rebuilds an error received as a body from another Berth service. */
export function errorFromBody(body: unknown, status: number, fallback: string): BerthError {
  const err = (body as Partial<ErrorBody> | null)?.error;
  if (err && typeof err.code === 'string' && typeof err.message === 'string') {
    return new BerthError(err.code, err.message, {
      status,
      retryable: status >= 500 || status === 429,
      details: typeof err.details === 'object' && err.details !== null ? err.details : {},
    });
  }
  const said = foreignMessage(body);
  return new BerthError('UPSTREAM_ERROR', `${fallback}: HTTP ${status}${said ? `: ${said}` : ''}`, {
    status: 502,
    retryable: status >= 500,
    details: { upstream_status: status },
  });
}

/**
 * What an OpenStack service said, in the shapes they use: the API-WG `{"errors": [{title, detail}]}`
 * (Placement), Keystone's `{"error": {message}}`, nova's `{"badRequest": {message}}`, Glance's
 * `{"message"}`. Capped, so a large body never floods a log line.
 */
function foreignMessage(body: unknown): string {
  if (typeof body !== 'object' || body === null) return '';
  const b = body as Record<string, unknown>;
  const pick = (o: unknown): string => {
    if (typeof o !== 'object' || o === null) return '';
    const r = o as Record<string, unknown>;
    const text = [r.detail, r.message, r.title].find((v) => typeof v === 'string' && v.trim() !== '');
    return typeof text === 'string' ? text.replace(/\s+/g, ' ').trim() : '';
  };
  const said = Array.isArray(b.errors) ? pick(b.errors[0]) : pick(b.error) || pick(b) || pick(Object.values(b)[0]);
  return said.slice(0, 300);
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
