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
  details?: ErrorDetails;
  cause?: unknown;
}

export class BerthError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: ErrorDetails;

  constructor(code: string, message: string, opts: BerthErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BerthError';
    this.code = code;
    this.status = opts.status ?? 500;
    this.retryable = opts.retryable ?? false;
    this.details = opts.details ?? {};
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetails };
}

export const invalidInput = (message: string, details: ErrorDetails = {}): BerthError =>
  new BerthError('INVALID_INPUT', message, { status: 400, details });

export const notFound = (code: string, message: string, details: ErrorDetails = {}): BerthError =>
  new BerthError(code, message, { status: 404, details });

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
  return new BerthError('UPSTREAM_ERROR', `${fallback}: HTTP ${status}${said ? `: ${said}` : ''}`, { status: 502, retryable: status >= 500, details: { upstream_status: status } });
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
