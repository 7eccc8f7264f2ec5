import type { AgentClient, SerialConsoleGrant, SerialConsoleLease } from '../../agent/client/types.js';
import { BerthError } from '../../common/errors.js';
import type { MethodDoc } from '../rpc/reference.js';
import type { MethodSpec } from '../rpc/dispatcher.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError } from '../rpc/failure.js';
import type { InstanceArg } from '../objects/instance.js';
import { invalidField } from '../objects/primitive.js';

/** What a console authorisation gives the caller besides the agent's grant (nova's ConsoleAuthToken). */
export interface ConsoleAuthorization {
  token: string | null;
  access_url: string | null;
}

/**
 * Who records a console authorisation: nova mode stores a ConsoleAuthToken through
 * nova-conductor (driver/nova/console-auth.ts), which nova-serialproxy validates; standalone
 * records nothing (the caller connects to the agent's endpoint with the grant's path itself).
 */
export interface ConsoleAuthorizer {
  /** The lease the agent is asked for: `port` where the proxy sends no first line. */
  readonly lease: SerialConsoleLease;
  authorize(ctx: RequestContext, uuid: string, grant: SerialConsoleGrant): Promise<ConsoleAuthorization>;
}

export const standaloneConsoleAuthorizer: ConsoleAuthorizer = {
  lease: 'token',
  authorize: async () => ({ token: null, access_url: null }),
};

export interface SerialConsoleOptions {
  /** [serial_console] enabled */
  enabled: boolean;
}

const instanceOf = (args: Record<string, unknown>): InstanceArg => args.instance as InstanceArg;

/** The agent's refusals as the exceptions nova-compute raises for them (nova-api turns them into 400/404/409). */
function novaConsoleError(err: unknown, uuid: string, consoleType: string): unknown {
  if (!(err instanceof BerthError)) return err;
  switch (err.code) {
    case 'INSTANCE_NOT_FOUND':
      return novaError('InstanceNotFound', 404, `Instance ${uuid} could not be found.`, { instance_id: uuid });
    case 'INSTANCE_INVALID_STATE':
      return novaError('InstanceNotReady', 409, `Instance ${uuid} is not ready`, { instance_id: uuid });
    case 'CONSOLE_UNAVAILABLE':
      return novaError('ConsoleTypeUnavailable', 400, `Unavailable console type ${consoleType}. ${err.message}`, { console_type: consoleType });
    case 'CONSOLE_PORTS_EXHAUSTED':
      return novaError('SocketPortRangeExhaustedException', 400, `Not able to acquire a free port for ${String(err.details.host ?? 'this host')}`);
    default:
      return err;
  }
}

/**
 * get_serial_console and validate_console_port (nova/compute/manager.py): the agent opens the
 * instance's console endpoint and grants one connection; the authorizer records it where the
 * proxy looks; the answer is nova's connect_info (ConsoleSerial.get_connection_info): host,
 * port, internal_access_path (the agent's one-time path, which nova-serialproxy sends as its
 * `CONNECT` line), token and access_url.
 */
export function serialConsoleMethods(agent: AgentClient, authorizer: ConsoleAuthorizer, o: SerialConsoleOptions): Record<string, MethodSpec> {
  return {
    get_serial_console: {
      required: ['instance', 'console_type'],
      handler: async (ctx, args) => {
        const uuid = instanceOf(args).uuid;
        const consoleType = typeof args.console_type === 'string' ? args.console_type : '';
        if (!o.enabled) throw novaError('ConsoleTypeUnavailable', 400, `Unavailable console type ${consoleType}.`, { console_type: consoleType });
        if (consoleType !== 'serial') throw novaError('ConsoleTypeInvalid', 400, `Invalid console type ${consoleType}`, { console_type: consoleType });
        let grant: SerialConsoleGrant;
        try {
          grant = await agent.openSerialConsole(uuid, authorizer.lease);
        } catch (err) {
          throw novaConsoleError(err, uuid, consoleType);
        }
        const auth = await authorizer.authorize(ctx, uuid, grant);
        return { host: grant.host, port: grant.port, internal_access_path: grant.path, token: auth.token, access_url: auth.access_url };
      },
    },
    validate_console_port: {
      required: ['instance', 'port', 'console_type'],
      handler: async (_ctx, args) => {
        const uuid = instanceOf(args).uuid;
        if (typeof args.port !== 'string' && typeof args.port !== 'number') throw invalidField('port', 'expected a port');
        // The other console types do not exist on a container node: no port of theirs is valid.
        if (args.console_type !== 'serial' || !o.enabled) return false;
        const open = await agent.serialConsolePort(uuid).catch((err: unknown) => {
          throw novaConsoleError(err, uuid, 'serial');
        });
        return open !== null && String(open) === String(args.port);
      },
    },
  };
}

export const SERIAL_CONSOLE_DOCS: Record<string, MethodDoc> = {
  get_serial_console: {
    kind: 'call',
    summary:
      "Opens the instance's serial console endpoint on the agent (a TCP port of [serial_console] port_range on proxyclient_address, bridged to the container's stdin and stdout) and grants one connection until [serial_console] token_ttl; returns nova's connect_info: host, port, internal_access_path (the one-time path a connection names in its first line, `CONNECT <path> HTTP/1.1`), token and access_url. In nova mode a ConsoleAuthToken is stored through nova-conductor for nova-serialproxy ([serial_console] base_url); standalone, token and access_url are null.",
    errors: [
      'ConsoleTypeUnavailable (disabled, or a container created without an open stdin)',
      'ConsoleTypeInvalid',
      'InstanceNotFound',
      'InstanceNotReady (not running)',
      'SocketPortRangeExhaustedException',
    ],
  },
  validate_console_port: {
    kind: 'call',
    summary:
      "True when `port` is the port of the instance's open serial console endpoint (nova-serialproxy asks before it connects); false for other console types.",
    errors: ['InstanceNotFound'],
  },
};
