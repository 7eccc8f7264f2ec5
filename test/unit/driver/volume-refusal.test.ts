import { strict as assert } from 'node:assert';
import { computeEndpoint, UNSUPPORTED_METHODS } from '../../../driver/compute/endpoint.js';
import type { ComputeManager } from '../../../driver/compute/manager.js';
import { RpcFailure, serializeFailure } from '../../../driver/rpc/failure.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';

describe("nova's volume methods on a Berth node", () => {
  const ctx = { request_id: 'req-00000000-0000-4000-8000-000000000000', user_id: 'u', project_id: 'p' };

  it("are refused with a virt driver's NotImplementedError that says why (no Cinder connector; docs/volumes.md)", async () => {
    const faults: string[] = [];
    const manager = { recordFault: async (_uuid: string, _code: number, message: string) => void faults.push(message) } as unknown as ComputeManager;
    const methods = computeEndpoint(manager, new FakeAgentClient()).methods;
    for (const m of ['attach_volume', 'detach_volume', 'swap_volume', 'reserve_block_device_name']) {
      assert.ok((UNSUPPORTED_METHODS as readonly string[]).includes(m), m);
      await assert.rejects(methods[m]!.handler(ctx, {}) as Promise<unknown>, (err: unknown) => {
        assert.ok(err instanceof RpcFailure);
        assert.deepEqual([err.module, err.className], ['builtins', 'NotImplementedError']);
        assert.match(err.message, new RegExp(`^${m} is not supported by the Berth \\(docker\\) driver: Berth has no Cinder volume connector`));
        assert.match(err.message, /device-mapper .* iscsi_tcp .* NFS client: docs\/volumes\.md/);
        assert.match(serializeFailure(err), /"class": "NotImplementedError"/);
        return true;
      });
    }
    // Other refusals keep their plain message.
    await assert.rejects(
      methods.rescue_instance!.handler(ctx, {}) as Promise<unknown>,
      /^NotImplementedError: rescue_instance is not supported by the Berth \(docker\) driver$/,
    );
  });
});
