import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NamespaceMounts } from '../../agent/volumes/ns-mounts.js';

export interface NamespaceMountsHarness {
  ns: NamespaceMounts;
  /** A running guest's process. */
  pid: number;
  /** The content of file `path` as the guest reads it; null when it has none. */
  read(path: string): Promise<string | null>;
  /** Whether `target` is a mount point in the guest. */
  mounted(target: string): Promise<boolean>;
  /** Makes `path` a symbolic link to `to` in the guest. */
  link(path: string, to: string): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * Mounts into a running guest's mount namespace (agent/volumes/ns-mounts.ts, `NamespaceMounts`):
 * the same rules for the real helper on a container of the real dockerd and the fake.
 */
export function namespaceMountsConformance(label: string, setup: () => Promise<NamespaceMountsHarness>): void {
  describe(`NamespaceMounts conformance: ${label}`, function () {
    this.timeout(60_000);
    let h: NamespaceMountsHarness;
    let source: string;
    beforeEach(async () => {
      h = await setup();
      source = await mkdtemp(join(tmpdir(), 'berth-ns-source-'));
      await writeFile(join(source, 'f'), 'from the host');
    });
    afterEach(async () => {
      await h.cleanup();
      await rm(source, { recursive: true, force: true });
    });

    it('mounts a host folder at a new mount point in the guest, once however often asked, and unmounts it, repeatably', async () => {
      await h.ns.mount(h.pid, source, '/srv/vol');
      await h.ns.mount(h.pid, source, '/srv/vol');
      assert.equal(await h.mounted('/srv/vol'), true);
      assert.equal(await h.read('/srv/vol/f'), 'from the host');
      await h.ns.unmount(h.pid, '/srv/vol');
      await h.ns.unmount(h.pid, '/srv/vol');
      assert.equal(await h.mounted('/srv/vol'), false);
      assert.equal(await h.read('/srv/vol/f'), null);
    });

    it("refuses a mount point that is a guest's symbolic link", async () => {
      await h.link('/linked', '/tmp');
      await assert.rejects(h.ns.mount(h.pid, source, '/linked'));
      assert.equal(await h.mounted('/tmp'), false);
      assert.equal(await h.mounted('/linked'), false);
    });
  });
}
