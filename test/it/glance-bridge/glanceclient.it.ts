import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realRegistryClient, runGlanceClient, startTestService, type Result } from './helpers.js';

describe('glance-bridge with the stock python-glanceclient (v2, noauth)', () => {
  let endpoint: string;
  let cleanup: () => Promise<void>;
  let dir: string;

  before(async () => {
    const started = await startTestService(realRegistryClient());
    endpoint = started.service.url;
    cleanup = started.cleanup;
    dir = mkdtempSync(join(tmpdir(), 'berth-glanceclient-'));
  });
  after(async () => {
    await cleanup?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates, uploads, lists, shows, downloads (hash verified), updates and deletes an image', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const upload = join(dir, 'upload.bin');
    const download = join(dir, 'download.bin');
    writeFileSync(upload, data);
    const results = await runGlanceClient({
      endpoint,
      ops: [
        { op: 'create', args: { name: 'gc-image', container_format: 'bare', disk_format: 'raw', tags: ['one'], os_distro: 'busybox' } },
        { op: 'upload', id: '@0', path: upload },
        { op: 'show', id: '@0' },
        { op: 'list', filters: { name: 'gc-image' }, page_size: 1 },
        { op: 'download', id: '@0', path: download },
        { op: 'update', id: '@0', args: { name: 'gc-renamed', min_ram: 64, hw_arch: 'x86_64' }, remove_props: ['os_distro'] },
        { op: 'tag', id: '@0', tag: 'two' },
        { op: 'show', id: '@0' },
        { op: 'delete', id: '@0' },
        { op: 'show', id: '@0' },
      ],
    });
    const [created, , shown, listed, downloaded, updated, , tagged, , gone] = results as Result[];
    assert.equal(created!.status, 'queued', JSON.stringify(created));
    assert.equal(shown!.status, 'active');
    assert.equal(shown!.size, data.length);
    assert.equal(shown!.checksum, createHash('md5').update(data).digest('hex'));
    assert.equal(shown!.os_hash_value, createHash('sha512').update(data).digest('hex'));
    assert.deepEqual(
      listed!.images.map((i: Result) => i.id),
      [created!.id],
    );
    assert.equal(downloaded!.size, data.length);
    assert.deepEqual(readFileSync(download), data);
    assert.equal(updated!.name, 'gc-renamed', JSON.stringify(updated));
    assert.equal(updated!.min_ram, 64);
    assert.equal(updated!.hw_arch, 'x86_64');
    assert.equal(updated!.os_distro, undefined);
    assert.deepEqual([...tagged!.tags].sort(), ['one', 'two']);
    assert.equal(gone!.error?.code, 404);
    assert.match(gone!.error.text, /no image with id/);
  });

  it("shows the service's message for 404, 409 and 403", async () => {
    const file = join(dir, 'small.bin');
    writeFileSync(file, 'x');
    const results = await runGlanceClient({
      endpoint,
      ops: [
        { op: 'show', id: '3f0b3b0e-0000-4000-8000-000000000000' },
        { op: 'create', args: { name: 'gc-errors', container_format: 'bare', disk_format: 'raw', protected: true } },
        { op: 'upload', id: '@1', path: file },
        { op: 'upload', id: '@1', path: file },
        { op: 'delete', id: '@1' },
        { op: 'update', id: '@1', args: { protected: false } },
        { op: 'delete', id: '@1' },
      ],
    });
    const [missing, , , conflict, forbidden, , deleted] = results as Result[];
    assert.equal(missing!.error.class, 'HTTPNotFound');
    assert.match(missing!.error.details, /no image with id 3f0b3b0e/);
    assert.equal(conflict!.error.class, 'HTTPConflict');
    assert.match(conflict!.error.details, /data can only be uploaded to a queued image/);
    assert.equal(forbidden!.error.class, 'HTTPForbidden');
    assert.match(forbidden!.error.details, /is protected/);
    assert.equal(deleted!.error, undefined);
  });
});
