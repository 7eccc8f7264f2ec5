import type { Router } from '@koa/router';
import { readJsonBody, requireUuid } from '../../common/koa.js';
import { agentError } from '../errors.js';
import type { Consoles } from './consoles.js';

/**
 * The serial console routes of the agent's API (docs/agent-api.md): `POST` grants a one-time,
 * expiring connection to the instance's console endpoint; `GET` says which port its endpoint has
 * open, if any (what nova's validate_console_port compares).
 */
export function consoleRoutes(api: Router, consoles: Consoles): void {
  api.post('/instances/:uuid/serial-console', async (ctx) => {
    const uuid = requireUuid(ctx.params.uuid, 'uuid');
    const body = (await readJsonBody(ctx, 1024)) as { kind?: unknown } | undefined;
    const kind = body?.kind ?? 'token';
    if (kind !== 'token' && kind !== 'port') throw agentError('INVALID_INPUT', 'kind must be token or port', { field: 'kind' });
    ctx.status = 201;
    ctx.body = { serial_console: await consoles.open(uuid, kind) };
  });
  api.get('/instances/:uuid/serial-console', (ctx) => {
    ctx.body = { serial_console: { port: consoles.port(requireUuid(ctx.params.uuid, 'uuid')) } };
  });
}
