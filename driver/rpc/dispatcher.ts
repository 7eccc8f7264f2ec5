import { noSuchMethod, typeError, unsupportedVersion } from './failure.js';
import type { RequestContext, RpcRequest } from './envelope.js';

/**
 * The dispatcher: finds the endpoint for a request by namespace and version, then the method,
 * then checks the arguments against the method's declared parameters (oslo-wire-contract.md
 * §5.4). It knows nothing of AMQP.
 */
export interface MethodSpec {
  /** Parameters that must be present (Python positional parameters without defaults). */
  required: readonly string[];
  /** Parameters that may be absent. Unknown arguments are ignored, as the contract advises. */
  optional?: readonly string[];
  /** Long operations are limited by the build concurrency limit. */
  long?: boolean;
  handler: (ctx: RequestContext, args: Record<string, unknown>) => Promise<unknown> | unknown;
}

export interface Endpoint {
  /** Python class name used in TypeError messages, e.g. ComputeManager. */
  name: string;
  namespace: string | null;
  /** Highest version implemented, `X.Y`. */
  version: string;
  methods: Readonly<Record<string, MethodSpec>>;
  /**
   * Runs once on the checked arguments of every request before the handler (oslo's serializer
   * step, deserialize_entity): where an endpoint takes in the objects its messages carry.
   */
  deserialize?: (args: Record<string, unknown>, spec: MethodSpec) => Record<string, unknown>;
}

function parseVersion(v: string): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null;
}

/** oslo's version_is_compatible(imp_version, version). */
export function versionCompatible(implemented: string, requested: string): boolean {
  const imp = parseVersion(implemented);
  const req = parseVersion(requested);
  if (!imp || !req) return false;
  if (imp[0] !== req[0]) return false;
  if (req[1] !== imp[1]) return req[1] < imp[1];
  return req[2] <= imp[2];
}

export interface Dispatched {
  spec: MethodSpec;
  endpoint: Endpoint;
  args: Record<string, unknown>;
}

export class Dispatcher {
  constructor(private readonly endpoints: readonly Endpoint[]) {}

  /** Finds the method to run, or throws the RpcFailure the caller should get. */
  resolve(req: RpcRequest): Dispatched {
    let versionMatched = false;
    for (const ep of this.endpoints) {
      if (ep.namespace !== req.namespace) continue;
      if (!versionCompatible(ep.version, req.version)) continue;
      versionMatched = true;
      if (req.method.startsWith('_') || !Object.hasOwn(ep.methods, req.method)) continue;
      const spec = ep.methods[req.method]!;
      const args = checkArgs(ep, req.method, spec, req.args);
      return { spec, endpoint: ep, args: ep.deserialize ? ep.deserialize(args, spec) : args };
    }
    if (versionMatched) throw noSuchMethod(req.method);
    throw unsupportedVersion(req.version, req.method);
  }
}

function checkArgs(ep: Endpoint, method: string, spec: MethodSpec, args: Record<string, unknown>): Record<string, unknown> {
  const missing = spec.required.filter((p) => !Object.hasOwn(args, p));
  if (missing.length) {
    const names = missing.map((m) => `'${m}'`);
    const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
    throw typeError(`${ep.name}.${method}() missing ${missing.length} required positional argument${missing.length > 1 ? 's' : ''}: ${list}`);
  }
  const known = new Set([...spec.required, ...(spec.optional ?? [])]);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) if (known.has(k)) out[k] = v;
  return out;
}
