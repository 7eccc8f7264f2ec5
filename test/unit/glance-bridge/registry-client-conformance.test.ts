import { silentLogger } from '../../../common/log.js';
import { HttpRegistryClient } from '../../../glance-bridge/registry/http.js';
import { createRegistryApp } from '../../../glance-bridge/registry-endpoint/registry-app.js';
import { registryClientConformance } from '../../conformance/registry-client.js';
import { FakeRegistryClient } from '../../fakes/registry-client.js';
import { inProcessAgent, serveInProcess } from '../../support/in-process.js';
import { createHarness } from './harness.js';

registryClientConformance('fake', async () => {
  const client = new FakeRegistryClient();
  const registry = 'registry.test:5000';
  return {
    client,
    registry,
    publish: async (repository, tag, image) => {
      client.addImage({ registry, repository }, tag, image);
    },
    unreachable: 'unreachable.test:5000',
    cleanup: async () => undefined,
  };
});

/** The HTTP client on the image service's own registry endpoint, serving what its store imported. */
registryClientConformance('HTTP client on the image service registry endpoint', async () => {
  const h = await createHarness();
  const server = serveInProcess(createRegistryApp({ images: h.images, blobs: h.blobs, log: silentLogger() }).app.callback());
  const registry = new URL(server.base).host;
  // An origin nothing is served at: the in-process pool refuses its connections.
  const gone = serveInProcess(() => undefined);
  await gone.close();
  const unreachable = new URL(gone.base).host;
  return {
    client: new HttpRegistryClient({
      insecureHosts: [registry, unreachable],
      agent: inProcessAgent,
      timeoutMs: 5000,
      maxManifestBytes: 4 << 20,
      maxBlobBytes: 64 << 20,
      retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
    }),
    registry,
    publish: async (repository, tag, image) => {
      const upstream = 'registry.test:5000';
      h.registry.addImage({ registry: upstream, repository }, tag, image);
      await h.importer.importImage(`docker://${upstream}/${repository}:${tag}`);
    },
    unreachable,
    cleanup: async () => {
      await server.close();
      await h.close();
    },
  };
});
