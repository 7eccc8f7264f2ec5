import { BerthError } from '../../common/errors.js';
import { pyJson } from './pyjson.js';

/**
 * An error as oslo.messaging serializes it into a reply's `failure` (oslo-wire-contract.md §6.2).
 * The caller rebuilds `module.class` when its allow-list has the module (nova callers allow
 * `nova.exception` and `builtins`), otherwise raises RemoteError.
 */
export class RpcFailure extends Error {
  constructor(
    readonly className: string,
    readonly module: string,
    message: string,
    readonly kwargs: Record<string, unknown> = {},
    /** Expected failures (wrong state, not found) are logged quietly. */
    readonly expected = true,
  ) {
    super(message);
    this.name = className;
  }
}

export const noSuchMethod = (method: string): RpcFailure =>
  new RpcFailure('NoSuchMethod', 'oslo_messaging.rpc.dispatcher', `Endpoint does not support RPC method ${method}`);

export const unsupportedVersion = (version: string, method: string): RpcFailure =>
  new RpcFailure('UnsupportedVersion', 'oslo_messaging.rpc.dispatcher', `Endpoint does not support RPC version ${version}. Attempted method: ${method}`);

export const typeError = (message: string): RpcFailure => new RpcFailure('TypeError', 'builtins', message);

/** nova's NotImplementedError of a virt driver without the feature; `why`, when given, follows. */
export const notImplemented = (what: string, why?: string): RpcFailure =>
  new RpcFailure('NotImplementedError', 'builtins', `${what} is not supported by the Berth (docker) driver${why ? `: ${why}` : ''}`);

/** A nova.exception class with its format kwargs and HTTP-style code. */
export const novaError = (className: string, code: number, message: string, kwargs: Record<string, unknown> = {}): RpcFailure =>
  new RpcFailure(className, 'nova.exception', message, { ...kwargs, code });

/**
 * Maps anything thrown inside an endpoint to the failure the caller should see. A BerthError
 * (the driver's own codes, driver/errors.ts, or a peer's it passes on) is a nova.exception
 * NovaException with its status as `code` and its typed code as `berth_code`.
 */
export function toRpcFailure(err: unknown): RpcFailure {
  if (err instanceof RpcFailure) return err;
  if (err instanceof BerthError) {
    return new RpcFailure('NovaException', 'nova.exception', err.message, { code: err.status, berth_code: err.code }, err.status < 500);
  }
  return new RpcFailure('NovaException', 'nova.exception', 'An unknown exception occurred.', { code: 500 }, false);
}

/** The JSON string placed in a reply's `failure` key. */
export function serializeFailure(f: RpcFailure): string {
  const tb = [`${f.module}.${f.className}: ${f.message}\n`];
  return pyJson({ class: f.className, module: f.module, message: f.message, tb, args: [f.message], kwargs: f.kwargs });
}
