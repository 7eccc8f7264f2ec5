import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BerthError } from '../../../common/errors.js';
import { buildImage } from '../../fakes/image-builder.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

describe('glance-bridge Importer: project quotas', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const isQuota = (err: unknown) => err instanceof BerthError && err.code === 'QUOTA_EXCEEDED' && err.status === 413;

  it('refuses a new image past the image-count quota before fetching anything; a repeat of an imported image is free', async () => {
    h = await createHarness({ quotas: { maxImages: 1, maxBytes: 0 } });
    const one = await buildImage();
    const two = await buildImage({ layers: [{ 'b.bin': randomBytes(64) }] });
    h.registry.addImage(REPO, 'v1', one);
    h.registry.addImage(REPO, 'v2', two);
    await h.importer.importImage(SOURCE);
    await assert.rejects(
      h.importer.startImport(SOURCE.replace(/:v1$/, ':v2')),
      (e: unknown) => isQuota(e) && /image_count_total is over limit of 1/.test((e as Error).message),
    );
    assert.equal(await h.blobs.has(two.layers[0]!.descriptor.digest), false, 'nothing fetched');
    assert.equal((await h.importer.importImage(SOURCE)).status, 'active', 'the same content again is no new image');
  });

  it('refuses an import whose declared size passes the byte quota, naming what remains', async () => {
    h = await createHarness({ quotas: { maxImages: 0, maxBytes: 1024 } });
    const big = await buildImage({ layers: [{ 'big.bin': randomBytes(64 * 1024) }] });
    h.registry.addImage(REPO, 'v1', big);
    await assert.rejects(h.importer.startImport(SOURCE), (e: unknown) => isQuota(e) && /1024 bytes remaining/.test((e as Error).message));
    assert.equal((await h.images.usage('berth')).count, 0, 'no image record was made');
  });
});
