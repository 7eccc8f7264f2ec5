import type { SerialConsoleGrant } from '../../agent/client/types.js';
import type { ConsoleAuthorization, ConsoleAuthorizer } from '../compute/serial-console.js';
import type { RequestContext } from '../rpc/envelope.js';
import type { ConductorClient } from './conductor.js';
import { newObject } from './objects.js';

/**
 * nova-compute's half of a console authorisation (manager.get_serial_console): a new
 * ConsoleAuthToken with the console's host, port and internal_access_path, `authorize`d through
 * nova-conductor (a remotable method: the conductor runs it and stores the token's hash with its
 * expiry in nova's database), which answers the token itself. nova-serialproxy later validates
 * the token there, asks this node validate_console_port, connects to host:port and sends the
 * internal_access_path as its `CONNECT` line, which the agent checks against its own one-time lease.
 */
export class NovaConsoleAuthorizer implements ConsoleAuthorizer {
  /**
   * nova-serialproxy of Zed fails on any internal_access_path (websocketproxy.py compares the
   * bytes it reads with a str), so nova's consoles take port leases: the proxy's connection,
   * which it makes only after validating nova's token and validate_console_port, is the one the
   * lease lets through.
   */
  readonly lease = 'port' as const;
  constructor(private readonly o: { conductor: ConductorClient; baseUrl: string; ttlSeconds: number }) {}

  async authorize(ctx: RequestContext, uuid: string, grant: SerialConsoleGrant): Promise<ConsoleAuthorization> {
    const obj = newObject('ConsoleAuthToken', {
      console_type: 'serial',
      host: grant.host,
      port: grant.port,
      internal_access_path: grant.path,
      instance_uuid: uuid,
      access_url_base: this.o.baseUrl,
    });
    const [, token] = await this.o.conductor.objectAction(obj, 'authorize', { ttl: this.o.ttlSeconds }, ctx);
    if (typeof token !== 'string' || token === '') throw new Error('nova-conductor answered ConsoleAuthToken.authorize without a token');
    // ConsoleAuthToken.access_url for a serial console: the base URL with the token as its query.
    return { token, access_url: `${this.o.baseUrl}?token=${token}` };
  }
}
