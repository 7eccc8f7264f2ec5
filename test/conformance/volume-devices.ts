import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError } from '../../common/errors.js';
import { GIB, type VolumeDevices } from '../../agent/volumes/types.js';

export interface VolumeDevicesHarness {
  devices: VolumeDevices;
  /** Removes what a test left. */
  cleanup(): Promise<void>;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const present = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

/**
 * The host's volume devices (agent/volumes/types.ts, `VolumeDevices`): the same rules for the
 * loop devices on a real host and the folders of the fake.
 */
export function volumeDevicesConformance(label: string, setup: () => Promise<VolumeDevicesHarness>): void {
  describe(`VolumeDevices conformance: ${label}`, function () {
    this.timeout(120_000);
    let h: VolumeDevicesHarness;
    const made: string[] = [];
    const provision = async (sizeGb = 1): Promise<string> => {
      const id = randomUUID();
      made.push(id);
      await h.devices.provision(id, sizeGb);
      return id;
    };

    beforeEach(async () => {
      h = await setup();
    });
    afterEach(async () => {
      for (const id of made.splice(0)) await h.devices.destroy(id).catch(() => undefined);
      await h.cleanup();
    });

    it('provisions an active, empty volume of the size asked for, listed by id', async () => {
      const id = await provision(1);
      const data = await h.devices.activate(id);
      assert.ok(await present(data));
      const u = await h.devices.usage(id);
      assert.ok(u, 'an active volume reports its usage');
      assert.ok(u.size_bytes > 0.9 * GIB && u.size_bytes <= GIB, `size ${u.size_bytes}`);
      assert.ok((await h.devices.list()).includes(id));
    });

    it('keeps data across deactivate and activate; the data path exists only while active', async () => {
      const id = await provision();
      const data = await h.devices.activate(id);
      await writeFile(join(data, 'kept.txt'), 'kept');
      assert.equal(await h.devices.activate(id), data, 'activate is idempotent');
      await h.devices.deactivate(id);
      await h.devices.deactivate(id);
      assert.equal(await present(data), false, 'nothing to bind while inactive');
      assert.equal(await h.devices.usage(id), null);
      const again = await h.devices.activate(id);
      assert.equal(await readFile(join(again, 'kept.txt'), 'utf8'), 'kept');
    });

    it('refuses to provision an id twice; unknown ids are VOLUME_NOT_FOUND', async () => {
      const id = await provision();
      await rejectsWith(h.devices.provision(id, 1), 'VOLUME_FAILED');
      assert.ok(await present(await h.devices.activate(id)), 'the first volume is intact');
      await rejectsWith(h.devices.activate(randomUUID()), 'VOLUME_NOT_FOUND');
    });

    it('destroys a volume, repeatably', async () => {
      const id = await provision();
      const data = await h.devices.activate(id);
      await h.devices.destroy(id);
      await h.devices.destroy(id);
      assert.equal(await present(data), false);
      assert.ok(!(await h.devices.list()).includes(id));
      await rejectsWith(h.devices.activate(id), 'VOLUME_NOT_FOUND');
    });
  });
}
