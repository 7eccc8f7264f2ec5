import type { Router } from '@koa/router';
import { requireUuid } from '../../common/koa.js';
import type { Consoles } from './consoles.js';

/**
 * The serial console routes of the agent's API (docs/agent-api.md): `POST` grants a one-time,
 * expiring connection to the instance's console endpoint; `GET` says which port its endpoint has
 * open, if any (what nova's validate_console_port compares).
 */
export function consoleRoutes(api: Router, consoles: Consoles): void {
  api.post('/instances/:uuid/serial-console', async (ctx) => {
    ctx.status = 201;
    ctx.body = { serial_console: await consoles.open(requireUuid(ctx.params.uuid, 'uuid')) };
  });
  api.get('/instances/:uuid/serial-console', (ctx) => {
    ctx.body = { serial_console: { port: consoles.port(requireUuid(ctx.params.uuid, 'uuid')) } };
  });
}
