import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { ImageServiceHandle } from '../../../glance-bridge/main.js';
import { buildImage, type BuiltImage } from '../../fakes/image-builder.js';
import { REGISTRY, deleteManifest, dockerHasImage, dockerRemoveImage, pushImage, realRegistryClient, startTestService } from './helpers.js';

const run = promisify(execFile);
// The CLI of the system dockerd (Docker 20.10); loopback registries need no insecure-registries entry.
const DOCKER_CLI = '/usr/bin/docker';

async function dockerPull(ref: string): Promise<void> {
  await run(DOCKER_CLI, ['pull', '-q', ref], { timeout: 120_000 });
}

async function dockerImageId(ref: string): Promise<string> {
  return (await run(DOCKER_CLI, ['image', 'inspect', '--format', '{{.Id}}', ref], { timeout: 30_000 })).stdout.trim();
}

describe('glance-bridge registry endpoint pulled by the real dockerd', () => {
  let service: ImageServiceHandle;
  let cleanup: () => Promise<void>;
  let endpoint: string;
  const pushed: [string, BuiltImage][] = [];
  const pulledIds: string[] = [];

  before(async () => {
    const started = await startTestService(realRegistryClient());
    service = started.service;
    cleanup = started.cleanup;
    endpoint = service.registryEndpoint!.address;
  });
  after(async () => {
    for (const id of pulledIds) await dockerRemoveImage(id).catch(() => undefined);
    for (const [repo, built] of pushed) await deleteManifest(repo, built.manifestDigest).catch(() => undefined);
    await cleanup?.();
  });

  async function importBuilt(tag: string, built: BuiltImage) {
    await pushImage('berth/it-serve', tag, built);
    pushed.push(['berth/it-serve', built]);
    const image = await service.importer.importImage(`docker://${REGISTRY}/berth/it-serve:${tag}`);
    pulledIds.push(image.properties.docker_image_id!);
    return image;
  }

  it('docker pull fetches an image by berth/<id>, then a sharing image fetches only its new layer', async () => {
    const shared: Record<string, Buffer>[] = [{ 'srv/base.bin': randomBytes(32 * 1024) }, { 'srv/mid.bin': randomBytes(32 * 1024) }];
    const first = await buildImage({ layers: [...shared, { 'srv/a.bin': randomBytes(16 * 1024) }] });
    const second = await buildImage({ layers: [...shared, { 'srv/b.bin': randomBytes(48 * 1024) }] });
    assert.equal(second.layers[0]!.descriptor.digest, first.layers[0]!.descriptor.digest);

    const a = await importBuilt('a', first);
    assert.equal(await dockerHasImage(a.properties.docker_image_id!), false);
    await dockerPull(`${endpoint}/berth/${a.id}`);
    assert.equal(await dockerImageId(`${endpoint}/berth/${a.id}`), a.properties.docker_image_id);
    const stats = service.registryEndpoint!.stats;
    assert.equal(stats.blobsServed, 4);

    // Pulled under the name and tag it was imported from; dockerd already has two of its layers.
    const b = await importBuilt('b', second);
    const before = { ...stats };
    await dockerPull(`${endpoint}/berth/it-serve:b`);
    assert.equal(await dockerImageId(`${endpoint}/berth/it-serve:b`), b.properties.docker_image_id);
    assert.equal(stats.blobsServed - before.blobsServed, 2);
    assert.equal(stats.blobBytesServed - before.blobBytesServed, second.config.bytes.length + second.layers[2]!.bytes.length);
  });

  it('docker pull of an image whose zstd layer was converted loads as the config digest', async () => {
    const built = await buildImage({
      oci: true,
      compression: ['gzip', 'zstd'],
      layers: [{ 'etc/z': randomBytes(8).toString('hex') }, { 'srv/z.bin': randomBytes(64 * 1024) }],
    });
    const image = await importBuilt('zstd', built);
    assert.notEqual(image.properties.berth_manifest_digest, image.properties.docker_digest);
    await dockerPull(`${endpoint}/berth/${image.id}@${image.properties.berth_manifest_digest}`);
    assert.equal(await dockerImageId(`${endpoint}/berth/${image.id}@${image.properties.berth_manifest_digest}`), image.properties.docker_image_id);
  });
});
