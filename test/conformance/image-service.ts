import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { BerthError } from '../../common/errors.js';
import { readBody } from '../../common/http-client.js';
import type { GlanceImage, ImageService } from '../../glance-bridge/client/types.js';
import { buildDockerArchive } from '../fakes/docker-archive.js';

/** What the suite needs from an ImageService under test. */
export interface ImageServiceHarness {
  images: ImageService;
  /** Makes project `member` a member of shared image `id` (the owner's POST /v2/images/{id}/members). */
  addMember(id: string, member: string): Promise<void>;
  /** A `docker://` reference the service can import, and the manifest digest it names. */
  importable(): Promise<{ source: string; digest: string }>;
  /** A `docker://` reference on the registry of `importable` that names no image. */
  unimportable: string;
  /** Removes everything the harness and the suite made. */
  cleanup(): Promise<void>;
}

async function rejectsWith(p: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status);
    return true;
  });
}

/**
 * One suite for every ImageService, so the in-memory image store the agent and driver tests use
 * keeps the image service's rules: queued → active by an upload, Glance's list filters, the codes
 * for a missing image and for an image without data, members, property and format updates.
 */
export function imageServiceConformance(name: string, makeHarness: () => Promise<ImageServiceHarness>): void {
  describe(`ImageService conformance: ${name}`, function () {
    this.timeout(60_000);
    let h: ImageServiceHarness;
    let s: ImageService;
    const run = randomUUID().slice(0, 8);
    const queued = (props: Record<string, unknown> = {}): Promise<GlanceImage> =>
      s.createImage({ name: `conformance-${run}-${randomUUID().slice(0, 8)}`, container_format: 'docker', disk_format: 'raw', ...props });
    const upload = async (id: string): Promise<{ image: GlanceImage; tar: Buffer }> => {
      const { tar } = await buildDockerArchive(null, id);
      return { image: await s.uploadImage(id, Readable.from([tar]), tar.length), tar };
    };

    before(async () => {
      h = await makeHarness();
      s = h.images;
    });
    after(async () => {
      await h?.cleanup();
    });

    it('creates a queued image with its formats and custom properties as top-level keys, shared unless told', async () => {
      const image = await queued({ conformance: 'yes' });
      assert.match(image.id, /^[0-9a-f-]{36}$/);
      assert.equal(image.status, 'queued');
      assert.equal(image.container_format, 'docker');
      assert.equal(image.disk_format, 'raw');
      assert.equal(image.conformance, 'yes');
      assert.equal(image.visibility, 'shared');
      assert.equal(image.size, null);
      assert.equal((await queued({ visibility: 'private' })).visibility, 'private');
      const read = await s.getImage(image.id);
      assert.equal(read?.id, image.id);
      assert.equal(read?.name, image.name);
      assert.equal(read?.conformance, 'yes');
    });

    it('answers null for an unknown image, and IMAGE_NOT_FOUND (404) for its data, upload and updates', async () => {
      const id = randomUUID();
      assert.equal(await s.getImage(id), null);
      await rejectsWith(s.downloadImage(id), 'IMAGE_NOT_FOUND', 404);
      await rejectsWith(s.uploadImage(id, Readable.from([Buffer.from('x')]), 1), 'IMAGE_NOT_FOUND', 404);
      await rejectsWith(s.setProperties(id, { a: 'b' }), 'IMAGE_NOT_FOUND', 404);
      await rejectsWith(s.setFormats(id, { container_format: 'docker', disk_format: 'raw' }), 'IMAGE_NOT_FOUND', 404);
      assert.equal(await s.getMember(id, 'someone'), null);
    });

    it('refuses the data of an image that has none with IMAGE_NO_DATA (409)', async () => {
      const image = await queued();
      await rejectsWith(s.downloadImage(image.id), 'IMAGE_NO_DATA', 409);
    });

    it('takes one upload into a queued image: active, sized, hashed, and served back as sent', async () => {
      const { image, tar } = await upload((await queued()).id);
      assert.equal(image.status, 'active');
      assert.equal(image.size, tar.length);
      assert.equal(image.checksum, createHash('md5').update(tar).digest('hex'));
      assert.equal(image.os_hash_algo, 'sha512');
      assert.equal(image.os_hash_value, createHash('sha512').update(tar).digest('hex'));
      assert.deepEqual(await readBody((await s.downloadImage(image.id)) as Readable, 1 << 20), tar);
      assert.equal((await s.getImage(image.id))?.status, 'active');
      await rejectsWith(upload(image.id), 'IMAGE_CONFLICT', 409);
    });

    it('lists by name, status, visibility, format and custom property', async () => {
      const tag = `t${randomUUID().slice(0, 8)}`;
      const a = await queued({ conformance_run: tag, visibility: 'private' });
      const b = await queued({ conformance_run: tag, container_format: 'bare' });
      await upload(a.id);
      const ids = async (filters: Record<string, string>): Promise<string[]> =>
        (await s.listImages(filters))
          .map((i) => i.id)
          .filter((id) => id === a.id || id === b.id)
          .sort();
      assert.deepEqual(await ids({ conformance_run: tag }), [a.id, b.id].sort());
      assert.deepEqual(await ids({ name: a.name! }), [a.id]);
      assert.deepEqual(await ids({ conformance_run: tag, status: 'queued' }), [b.id]);
      assert.deepEqual(await ids({ conformance_run: tag, status: 'active' }), [a.id]);
      assert.deepEqual(await ids({ conformance_run: tag, visibility: 'private' }), [a.id]);
      assert.deepEqual(await ids({ conformance_run: tag, visibility: 'shared' }), [b.id]);
      assert.deepEqual(await ids({ conformance_run: tag, container_format: 'bare' }), [b.id]);
      assert.deepEqual(await ids({ conformance_run: `${tag}-none` }), []);
      const listed = await s.listImages({ name: a.name! });
      assert.ok(listed.every((i) => i.name === a.name));
    });

    it('adds custom properties, and sets the formats of a queued image only (ATTRIBUTE_FORBIDDEN, 403, after)', async () => {
      const image = await queued({ container_format: 'bare', disk_format: 'qcow2' });
      const withProps = await s.setProperties(image.id, { conformance_a: '1', conformance_b: '2' });
      assert.equal(withProps.conformance_a, '1');
      assert.equal((await s.setProperties(image.id, { conformance_a: '3' })).conformance_a, '3');
      assert.equal((await s.getImage(image.id))?.conformance_b, '2');
      const formatted = await s.setFormats(image.id, { container_format: 'docker', disk_format: 'raw' });
      assert.equal(formatted.container_format, 'docker');
      assert.equal(formatted.disk_format, 'raw');
      await upload(image.id);
      await rejectsWith(s.setFormats(image.id, { container_format: 'bare', disk_format: 'raw' }), 'ATTRIBUTE_FORBIDDEN', 403);
    });

    it('knows the members of a shared image, and none of another', async () => {
      const shared = await queued({ visibility: 'shared' });
      const priv = await queued({ visibility: 'private' });
      assert.equal(await s.getMember(shared.id, 'conformance-member'), null);
      await h.addMember(shared.id, 'conformance-member');
      assert.equal((await s.getMember(shared.id, 'conformance-member'))?.status, 'pending');
      assert.equal(await s.getMember(shared.id, 'conformance-other'), null);
      assert.equal(await s.getMember(priv.id, 'conformance-member'), null);
    });

    it('deletes an image, and deleting it again succeeds', async () => {
      const { image } = await upload((await queued()).id);
      await s.deleteImage(image.id);
      assert.equal(await s.getImage(image.id), null);
      await rejectsWith(s.downloadImage(image.id), 'IMAGE_NOT_FOUND', 404);
      await s.deleteImage(image.id);
      assert.ok(!(await s.listImages({ name: image.name! })).some((i) => i.id === image.id));
    });

    it('imports a registry reference into an active image, and fails an unknown one with MANIFEST_NOT_FOUND (404)', async () => {
      const { source, digest } = await h.importable();
      const progress: string[] = [];
      const image = await s.importImage(source, { name: `conformance-${run}-import`, onProgress: (p) => progress.push(p.status) });
      assert.equal(image.status, 'active');
      assert.equal(image.name, `conformance-${run}-import`);
      assert.equal(image.container_format, 'docker');
      assert.equal(image.docker_digest, digest);
      assert.match(String(image.docker_image_id), /^sha256:[0-9a-f]{64}$/);
      assert.equal(progress[progress.length - 1], 'active');
      await rejectsWith(s.importImage(h.unimportable), 'MANIFEST_NOT_FOUND', 404);
    });

    it('refuses an export with EXPORT_NOT_CONFIGURED (409) when no remote Glance is set', async () => {
      const { image } = await upload((await queued()).id);
      await rejectsWith(s.exportImage(image.id), 'EXPORT_NOT_CONFIGURED', 409);
    });
  });
}
