import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Volume, VolumeChange } from '../../../agent/client/volumes.js';
import { startHarness, type AgentHarness } from './harness.js';

type Err = { error: { code: string; message: string; details: Record<string, unknown> } };

describe('agent local volumes API', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startHarness({ volumes: { maxSizeGb: 4, maxTotalGb: 6 } });
  });
  afterEach(async () => {
    await h.close();
  });

  const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const create = async (name: string, project = 'demo', size = 1): Promise<Volume> => {
    const res = await h.raw('POST', '/v1/volumes', json({ name, project_id: project, size_gb: size }));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return (res.body as { volume: Volume }).volume;
  };
  const attach = (ref: string, uuid: string, mount: string, project = 'demo') =>
    h.raw('PUT', `/v1/volumes/${ref}/attachment`, json({ instance_uuid: uuid, project_id: project, mount_point: mount }));
  const codeOf = (res: { body: unknown }): string => (res.body as Err).error.code;
  const bindsOf = (uuid: string) => h.runtime.containers.get(uuid)?.spec.volumes ?? [];

  it('creates, lists per project, shows by id or name, and deletes volumes', async () => {
    const v = await create('data', 'demo', 2);
    assert.deepEqual([v.name, v.project_id, v.size_gb, v.status, v.attachment], ['data', 'demo', 2, 'available', null]);
    await create('data', 'other');
    const mine = (await h.raw('GET', '/v1/volumes?project_id=demo')).body as { volumes: Volume[] };
    assert.deepEqual(
      mine.volumes.map((x) => x.id),
      [v.id],
    );
    assert.equal(((await h.raw('GET', '/v1/volumes')).body as { volumes: Volume[] }).volumes.length, 2, 'the operator sees every project');
    assert.equal(((await h.raw('GET', '/v1/volumes/data?project_id=demo')).body as { volume: Volume }).volume.id, v.id);
    assert.equal((await h.raw('DELETE', `/v1/volumes/${v.id}?project_id=demo`)).status, 204);
    assert.equal(codeOf(await h.raw('GET', `/v1/volumes/${v.id}`)), 'VOLUME_NOT_FOUND');
  });

  it('refuses bad names and sizes, a second volume of one name, and sizes beyond the limits', async () => {
    for (const body of [
      { name: '../x', project_id: 'demo', size_gb: 1 },
      { name: 'ok', project_id: 'demo', size_gb: 0 },
      { name: 'ok', project_id: 'demo', size_gb: 5 },
      { name: 'ok', project_id: 'de mo', size_gb: 1 },
      { name: 'ok', project_id: 'demo', size_gb: 1.5 },
    ]) {
      const res = await h.raw('POST', '/v1/volumes', json(body));
      assert.deepEqual([res.status, codeOf(res)], [400, 'INVALID_INPUT'], JSON.stringify(body));
    }
    await create('a', 'demo', 4);
    const dup = await h.raw('POST', '/v1/volumes', json({ name: 'a', project_id: 'demo', size_gb: 1 }));
    assert.deepEqual([dup.status, codeOf(dup)], [409, 'VOLUME_EXISTS']);
    const over = await h.raw('POST', '/v1/volumes', json({ name: 'b', project_id: 'demo', size_gb: 3 }));
    assert.deepEqual([over.status, codeOf(over)], [403, 'VOLUME_QUOTA_EXCEEDED']);
    await create('b', 'demo', 2);
  });

  it("hides another project's volume: not found for show, delete, attach and detach", async () => {
    const v = await create('secret', 'other');
    const uuid = randomUUID();
    for (const res of [
      await h.raw('GET', `/v1/volumes/${v.id}?project_id=demo`),
      await h.raw('DELETE', `/v1/volumes/${v.id}?project_id=demo`),
      await attach(v.id, uuid, '/data', 'demo'),
      await h.raw('DELETE', `/v1/volumes/${v.id}/attachment?project_id=demo`),
    ]) {
      assert.deepEqual([res.status, codeOf(res)], [404, 'VOLUME_NOT_FOUND']);
    }
    assert.equal(((await h.raw('GET', `/v1/volumes/${v.id}`)).body as { volume: Volume }).volume.status, 'available');
  });

  it('binds an attached volume read-write into the instance at its create, keeps it over a rebuild, frees it on delete', async () => {
    const v = await create('data');
    const uuid = randomUUID();
    const res = await attach('data', uuid, '/srv/data');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const change = res.body as VolumeChange;
    assert.deepEqual([change.volume.status, change.applies, change.volume.attachment?.mount_point], ['reserved', 'next-create', '/srv/data']);
    await h.client.createInstance(uuid, h.spec());
    const binds = bindsOf(uuid);
    assert.equal(binds.length, 1);
    assert.equal(binds[0]!.target, '/srv/data');
    assert.ok(existsSync(binds[0]!.source), 'the bind source is the mounted volume');
    writeFileSync(join(binds[0]!.source, 'kept'), 'yes');
    assert.equal(((await h.raw('GET', `/v1/volumes/${v.id}`)).body as { volume: Volume }).volume.status, 'in-use');

    const refused = await h.raw('DELETE', `/v1/volumes/${v.id}`);
    assert.deepEqual([refused.status, codeOf(refused)], [409, 'VOLUME_IN_USE'], 'an attached volume is not deleted');

    await h.client.deleteInstance(uuid, { keepVolumes: true });
    assert.equal(((await h.raw('GET', `/v1/volumes/${v.id}`)).body as { volume: Volume }).volume.status, 'reserved', 'a rebuild keeps it');
    await h.client.createInstance(uuid, h.spec({ image_id: h.imageId }));
    assert.deepEqual(bindsOf(uuid), binds);
    assert.ok(existsSync(join(binds[0]!.source, 'kept')));

    await h.client.deleteInstance(uuid);
    const after = ((await h.raw('GET', `/v1/volumes/${v.id}`)).body as { volume: Volume }).volume;
    assert.deepEqual([after.status, after.attachment], ['available', null]);
    assert.equal((await h.raw('DELETE', `/v1/volumes/${v.id}`)).status, 204);
  });

  it('attaches a volume to one instance only, one volume per mount point, and only within its project', async () => {
    await create('a');
    await create('b');
    const one = randomUUID();
    const two = randomUUID();
    assert.equal((await attach('a', one, '/data')).status, 200);
    assert.equal((await attach('a', one, '/data')).status, 200, 'the same attach again is a no-op');
    const busy = await attach('a', two, '/data');
    assert.deepEqual([busy.status, codeOf(busy)], [409, 'VOLUME_IN_USE']);
    const samePoint = await attach('b', one, '/data');
    assert.deepEqual([samePoint.status, codeOf(samePoint)], [400, 'INVALID_INPUT']);

    // An instance of another project cannot get a volume of this one, even by a stale attachment.
    await h.client.createInstance(two, h.spec({ project_id: 'other' }));
    const foreign = await attach('b', two, '/data');
    assert.deepEqual([foreign.status, codeOf(foreign)], [404, 'INSTANCE_NOT_FOUND']);
    await assert.rejects(h.client.createInstance(one, h.spec({ project_id: 'other' })), (e: Error & { code?: string }) => e.code === 'VOLUME_NOT_FOUND');
    assert.equal(h.runtime.containers.has(one), false, 'no container was made with it');
  });

  it('detaches: at once when no container binds it, after the next create when one does', async () => {
    await create('a');
    const uuid = randomUUID();
    await attach('a', uuid, '/data');
    let res = await h.raw('DELETE', '/v1/volumes/a/attachment?project_id=demo');
    assert.deepEqual([(res.body as VolumeChange).volume.status, (res.body as VolumeChange).applies], ['available', 'now']);
    await attach('a', uuid, '/data');
    await h.client.createInstance(uuid, h.spec());
    res = await h.raw('DELETE', '/v1/volumes/a/attachment?project_id=demo');
    assert.deepEqual([(res.body as VolumeChange).volume.status, (res.body as VolumeChange).applies], ['detaching', 'next-create']);
    const still = await attach('a', randomUUID(), '/data');
    assert.equal(codeOf(still), 'VOLUME_IN_USE', 'not free while the container binds it');
    // A rebuild makes the new container without it.
    await h.client.deleteInstance(uuid, { keepVolumes: true });
    await h.client.createInstance(uuid, h.spec());
    assert.deepEqual(bindsOf(uuid), []);
    assert.equal(((await h.raw('GET', '/v1/volumes/a?project_id=demo')).body as { volume: Volume }).volume.status, 'available');
  });

  it('refuses mount points that are relative, climb, or cover what the engine or Berth put in the container', async () => {
    await create('a');
    const uuid = randomUUID();
    for (const m of [
      'data',
      '/',
      '/a/../etc',
      '/a//b',
      '/proc',
      '/proc/x',
      '/sys/fs',
      '/dev',
      '/etc/hosts',
      '/etc',
      '/run/berth',
      '/run/berth/config',
      '/usr',
      '/a b',
      '/a:b',
    ]) {
      const res = await attach('a', uuid, m);
      assert.deepEqual([res.status, codeOf(res), (res.body as Err).error.details.field], [400, 'INVALID_INPUT', 'mount_point'], m);
    }
    assert.equal((await attach('a', uuid, '/var/lib/app')).status, 200);
  });
});
