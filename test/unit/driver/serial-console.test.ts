import assert from 'node:assert/strict';
import type { InstanceSpec } from '../../../agent/client/types.js';
import { serialConsoleMethods, standaloneConsoleAuthorizer, type ConsoleAuthorizer } from '../../../driver/compute/serial-console.js';
import type { ConductorClient } from '../../../driver/nova/conductor.js';
import { NovaConsoleAuthorizer } from '../../../driver/nova/console-auth.js';
import type { Primitive } from '../../../driver/nova/objects.js';
import type { RequestContext } from '../../../driver/rpc/envelope.js';
import { RpcFailure } from '../../../driver/rpc/failure.js';
import { EscapeFilter } from '../../../tools/lib/console-client.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';

const UUID = '11111111-1111-4111-8111-111111111111';
const ctx = {} as RequestContext;
const spec: InstanceSpec = {
  image_id: '22222222-2222-4222-8222-222222222222',
  flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
  name: 'vm',
  hostname: 'vm',
  project_id: 'p',
  user_id: 'u',
  metadata: {},
  user_data: null,
  key_data: null,
  fixed_ip: null,
};
/** The decoded instance argument, as the endpoint's deserialize step leaves it (only its uuid is read). */
const instance = { uuid: UUID };

describe("get_serial_console and validate_console_port (nova's compute manager semantics)", () => {
  let agent: FakeAgentClient;
  beforeEach(async () => {
    agent = new FakeAgentClient();
    await agent.createInstance(UUID, spec);
  });
  const methods = (authorizer: ConsoleAuthorizer = standaloneConsoleAuthorizer, enabled = true) => serialConsoleMethods(agent, authorizer, { enabled });
  const failsWith = async (p: unknown, className: string) =>
    assert.rejects(Promise.resolve(p), (e: unknown) => e instanceof RpcFailure && e.className === className && e.module === 'nova.exception');

  it("standalone: answers nova's connect_info with the agent's token lease; no nova token", async () => {
    const info = (await methods().get_serial_console!.handler(ctx, { instance, console_type: 'serial' })) as Record<string, unknown>;
    assert.deepEqual(info, { host: '127.0.0.1', port: 10000, internal_access_path: `/berth-console?token=fake-${UUID}`, token: null, access_url: null });
  });

  it('validate_console_port: true for the port of the open endpoint only, false for other console types', async () => {
    const m = methods();
    assert.equal(await m.validate_console_port!.handler(ctx, { instance, port: '10000', console_type: 'serial' }), false, 'no endpoint yet');
    await m.get_serial_console!.handler(ctx, { instance, console_type: 'serial' });
    assert.equal(await m.validate_console_port!.handler(ctx, { instance, port: '10000', console_type: 'serial' }), true);
    assert.equal(await m.validate_console_port!.handler(ctx, { instance, port: '10001', console_type: 'serial' }), false);
    assert.equal(await m.validate_console_port!.handler(ctx, { instance, port: '10000', console_type: 'novnc' }), false);
  });

  it("refusals as nova's exceptions: disabled, wrong type, not running, gone", async () => {
    await failsWith(
      methods(standaloneConsoleAuthorizer, false).get_serial_console!.handler(ctx, { instance, console_type: 'serial' }),
      'ConsoleTypeUnavailable',
    );
    await failsWith(methods().get_serial_console!.handler(ctx, { instance, console_type: 'novnc' }), 'ConsoleTypeInvalid');
    await agent.instanceAction(UUID, { action: 'stop' });
    await failsWith(methods().get_serial_console!.handler(ctx, { instance, console_type: 'serial' }), 'InstanceNotReady');
    await agent.deleteInstance(UUID);
    await failsWith(methods().get_serial_console!.handler(ctx, { instance, console_type: 'serial' }), 'InstanceNotFound');
  });

  it('nova mode: a port lease, and a ConsoleAuthToken authorised through the conductor; its token makes the access URL', async () => {
    const calls: Array<{ obj: Primitive; method: string; kwargs: Record<string, unknown> | undefined }> = [];
    const conductor: ConductorClient = {
      objectAction: async (obj, method, kwargs) => {
        calls.push({ obj, method, kwargs });
        return [{ id: 7 }, '0b6f3d4e-8c11-4c3b-9c2e-6f1d2a3b4c5d'];
      },
      objectClassActionVersions: async () => {
        throw new Error('not used');
      },
    };
    const authorizer = new NovaConsoleAuthorizer({ conductor, baseUrl: 'ws://proxy.example:6083/', ttlSeconds: 600 });
    const info = (await methods(authorizer).get_serial_console!.handler(ctx, { instance, console_type: 'serial' })) as Record<string, unknown>;
    assert.deepEqual(info, {
      host: '127.0.0.1',
      port: 10000,
      internal_access_path: null,
      token: '0b6f3d4e-8c11-4c3b-9c2e-6f1d2a3b4c5d',
      access_url: 'ws://proxy.example:6083/?token=0b6f3d4e-8c11-4c3b-9c2e-6f1d2a3b4c5d',
    });
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.method, 'authorize');
    assert.deepEqual(calls[0]!.kwargs, { ttl: 600 });
    assert.equal(calls[0]!.obj['nova_object.name'], 'ConsoleAuthToken');
    assert.equal(calls[0]!.obj['nova_object.version'], '1.1');
    assert.deepEqual(calls[0]!.obj['nova_object.data'], {
      console_type: 'serial',
      host: '127.0.0.1',
      port: 10000,
      internal_access_path: null,
      instance_uuid: UUID,
      access_url_base: 'ws://proxy.example:6083/',
    });
  });

  it('a conductor answering no token is an error, not a console without authorisation', async () => {
    const conductor = { objectAction: async () => [{}, null], objectClassActionVersions: async () => null } as unknown as ConductorClient;
    const authorizer = new NovaConsoleAuthorizer({ conductor, baseUrl: 'ws://p/', ttlSeconds: 600 });
    await assert.rejects(Promise.resolve(methods(authorizer).get_serial_console!.handler(ctx, { instance, console_type: 'serial' })), /without a token/);
  });
});

describe('berth server console input', () => {
  const run = (chunks: string[]) => {
    const f = new EscapeFilter();
    let out = '';
    let escaped = false;
    f.on('data', (c: Buffer) => (out += c.toString()));
    f.on('escape', () => (escaped = true));
    for (const c of chunks) f.write(c);
    return { out, escaped };
  };

  it('ends at ~. at the start of a line, also split across reads; passes every other ~ on', () => {
    assert.deepEqual(run(['echo a~.b\n', '~.', 'never\n']), { out: 'echo a~.b\n', escaped: true });
    assert.deepEqual(run(['ls\n~', '.']), { out: 'ls\n', escaped: true });
    assert.deepEqual(run(['~x\n', '~~\n']), { out: '~x\n~~\n', escaped: false });
    assert.deepEqual(run(['~.']), { out: '', escaped: true });
  });
});
