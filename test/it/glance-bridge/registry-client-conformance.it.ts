import { registryClientConformance } from '../../conformance/registry-client.js';
import { HttpRegistryClient } from '../../../glance-bridge/registry/http.js';
import { REGISTRY, deleteManifest, pushImage } from './helpers.js';

/** The HTTP client on the real docker-registry; the manifests the suite pushes are deleted after it. */
registryClientConformance('HTTP client on docker-registry', async () => {
  const unreachable = '127.0.0.1:9';
  const pushed: [string, string][] = [];
  return {
    client: new HttpRegistryClient({
      insecureHosts: [REGISTRY, unreachable],
      allowedInternal: [REGISTRY, unreachable],
      timeoutMs: 30_000,
      maxManifestBytes: 4 << 20,
      maxBlobBytes: 1 << 30,
      retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
    }),
    registry: REGISTRY,
    publish: async (repository, tag, image) => {
      await pushImage(repository, tag, image);
      pushed.push([repository, image.manifestDigest]);
    },
    unreachable,
    cleanup: async () => {
      for (const [repository, digest] of pushed) await deleteManifest(repository, digest);
    },
  };
});
