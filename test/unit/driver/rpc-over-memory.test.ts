import { strict as assert } from 'node:assert';
import { hasErrorCode } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import { driverError } from '../../../driver/errors.js';
import { RemoteFailure, RpcCaller } from '../../../driver/rpc/caller.js';
import { Dispatcher, type Endpoint } from '../../../driver/rpc/dispatcher.js';
import { RpcServer } from '../../../driver/rpc/server.js';
import { MemoryBroker, MemoryTransport } from '../../fakes/transport.js';
import { TEST_RABBIT as rabbit } from '../../support/driver-fixtures.js';

/** The RPC server and caller on the in-process transport: a call and a typed failure, end to end. */
describe('RPC server and caller over the in-process transport', () => {
  let server: MemoryTransport;
  let client: MemoryTransport;
  let caller: RpcCaller;

  beforeEach(async () => {
    const broker = new MemoryBroker();
    server = new MemoryTransport(broker);
    client = new MemoryTransport(broker);
    const endpoint: Endpoint = {
      name: 'Test',
      namespace: null,
      version: '6.0',
      methods: {
        echo: { required: ['text'], handler: (_ctx, args) => `echo ${String(args.text)}` },
        lost: {
          required: [],
          handler: () => {
            throw driverError('SNAPSHOT_LOST', 'the agent lost the snapshot into image i-1 (restarted?)');
          },
        },
      },
    };
    new RpcServer(server, new Dispatcher([endpoint]), {
      exchange: 'nova',
      topic: 'compute',
      server: 'node1',
      rabbit,
      maxMessageBytes: 1 << 20,
      maxConcurrentLong: 4,
      log: silentLogger(),
    });
    caller = new RpcCaller(client, 'nova', rabbit);
    await server.start();
    await client.start();
  });
  afterEach(async () => {
    await client.close();
    await server.close();
  });

  it('a call to compute.<server> is answered', async () => {
    assert.equal(await caller.call('compute.node1', 'echo', { text: 'hi' }, { version: '6.0', context: {}, timeoutSeconds: 5 }), 'echo hi');
  });

  it("a driver error comes back in oslo's failure format, with its code", async () => {
    await assert.rejects(caller.call('compute.node1', 'lost', {}, { version: '6.0', context: {}, timeoutSeconds: 5 }), (err: unknown) => {
      assert.ok(err instanceof RemoteFailure);
      assert.deepEqual([err.failureModule, err.failureClass], ['nova.exception', 'NovaException']);
      assert.ok(hasErrorCode(err, 'SNAPSHOT_LOST'));
      assert.equal(err.status, 500);
      return true;
    });
  });
});
