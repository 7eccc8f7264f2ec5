import assert from 'node:assert/strict';
import { BerthError } from '../../../common/errors.js';
import { parseChallenge } from '../../../glance-bridge/registry/auth.js';
import { MediaType, parseManifest, parsePlatform, selectPlatform } from '../../../glance-bridge/registry/manifest.js';
import { formatReference, parseReference } from '../../../glance-bridge/registry/reference.js';

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return err instanceof BerthError ? err.code : 'NOT_BERTH';
  }
  return 'NO_ERROR';
};
const D = `sha256:${'a'.repeat(64)}`;

describe('glance-bridge image references', () => {
  it('parses docker:// and plain references, registry host and port, tag and digest', () => {
    assert.deepEqual(parseReference('docker://127.0.0.1:5000/berth/busybox:latest'), {
      registry: '127.0.0.1:5000',
      repository: 'berth/busybox',
      tag: 'latest',
    });
    assert.deepEqual(parseReference('quay.io/org/app@' + D), { registry: 'quay.io', repository: 'org/app', digest: D });
    assert.deepEqual(parseReference('localhost/app:1.0@' + D), { registry: 'localhost', repository: 'app', tag: '1.0', digest: D });
    assert.deepEqual(parseReference('registry.test:5000/a/b/c'), { registry: 'registry.test:5000', repository: 'a/b/c', tag: 'latest' });
  });

  it('puts host-less names on Docker Hub, with library/ for one component', () => {
    assert.deepEqual(parseReference('busybox'), { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' });
    assert.deepEqual(parseReference('org/app:2'), { registry: 'docker.io', repository: 'org/app', tag: '2' });
  });

  it('refuses what is not a pullable reference', () => {
    for (const bad of ['', 'http://x.test/a', 'x.test/App', 'x.test/a@sha256:123', 'x.test/a:' + 't'.repeat(129), 'x.test/a:-bad', 'x.test/a b']) {
      assert.equal(
        code(() => parseReference(bad)),
        'INVALID_REFERENCE',
        bad,
      );
    }
  });

  it('formats the canonical docker:// form', () => {
    assert.equal(formatReference(parseReference('127.0.0.1:5000/berth/busybox')), 'docker://127.0.0.1:5000/berth/busybox:latest');
  });
});

describe('glance-bridge manifest parsing', () => {
  const desc = (mediaType: string, extra: object = {}) => ({ mediaType, digest: D, size: 10, ...extra });
  const image = (layerType = 'application/vnd.docker.image.rootfs.diff.tar.gzip', configType: string = MediaType.dockerConfig) =>
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config: desc(configType), layers: [desc(layerType)] }));

  it('reads Docker schema 2 and OCI manifests and indexes, trusting the body over Content-Type', () => {
    assert.equal(parseManifest(image(), 'application/json').kind, 'image');
    const oci = Buffer.from(JSON.stringify({ schemaVersion: 2, config: desc(MediaType.ociConfig), layers: [] }));
    assert.deepEqual(parseManifest(oci, MediaType.ociManifest).mediaType, MediaType.ociManifest);
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, manifests: [desc(MediaType.ociManifest, { platform: { os: 'linux', architecture: 'amd64' } })] }),
    );
    assert.equal(parseManifest(index, MediaType.ociIndex).kind, 'index');
  });

  it('refuses schema 1, artifacts, foreign layers, non-sha256 digests, HTML and broken JSON', () => {
    assert.equal(
      code(() => parseManifest(Buffer.from('{"schemaVersion":1}'), 'application/json')),
      'MANIFEST_UNSUPPORTED',
    );
    assert.equal(
      code(() => parseManifest(image(undefined, 'application/vnd.cncf.helm.config.v1+json'), '')),
      'MANIFEST_UNSUPPORTED',
    );
    assert.equal(
      code(() => parseManifest(image('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'), '')),
      'MANIFEST_UNSUPPORTED',
    );
    const sha512 = Buffer.from(
      JSON.stringify({ schemaVersion: 2, config: { mediaType: MediaType.ociConfig, digest: `sha512:${'b'.repeat(128)}`, size: 1 }, layers: [] }),
    );
    assert.equal(
      code(() => parseManifest(sha512, '')),
      'MANIFEST_UNSUPPORTED',
    );
    assert.equal(
      code(() => parseManifest(Buffer.from('<html></html>'), 'text/html')),
      'MANIFEST_INVALID',
    );
    assert.equal(
      code(() => parseManifest(Buffer.from('{"schemaVersion":'), 'application/json')),
      'MANIFEST_INVALID',
    );
    assert.equal(
      code(() => parseManifest(Buffer.from('[]'), 'application/json')),
      'MANIFEST_INVALID',
    );
    const noSize = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: MediaType.ociConfig, digest: D }, layers: [] }));
    assert.equal(
      code(() => parseManifest(noSize, '')),
      'MANIFEST_INVALID',
    );
  });

  it('selects platforms by os, architecture and variant, skipping attestations', () => {
    const entries = [
      desc(MediaType.ociManifest, { digest: `sha256:${'1'.repeat(64)}`, platform: { os: 'unknown', architecture: 'unknown' } }),
      desc(MediaType.ociManifest, { digest: `sha256:${'2'.repeat(64)}`, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } }),
      desc(MediaType.ociManifest, { digest: `sha256:${'3'.repeat(64)}`, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }),
    ];
    assert.equal(selectPlatform(entries, parsePlatform('linux/arm/v7')).digest, `sha256:${'3'.repeat(64)}`);
    assert.equal(selectPlatform(entries, parsePlatform('linux/arm')).digest, `sha256:${'2'.repeat(64)}`);
    assert.equal(
      code(() => selectPlatform(entries, parsePlatform('linux/amd64'))),
      'PLATFORM_NOT_FOUND',
    );
    assert.equal(
      code(() => parsePlatform('linux')),
      'INVALID_REFERENCE',
    );
  });
});

describe('glance-bridge WWW-Authenticate parsing', () => {
  it('reads Bearer parameters, including quoted commas', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.test/token",service="registry.test",scope="repository:a/b:pull,push"'), {
      scheme: 'bearer',
      params: { realm: 'https://auth.test/token', service: 'registry.test', scope: 'repository:a/b:pull,push' },
    });
    assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
    assert.equal(parseChallenge(''), null);
  });
});
