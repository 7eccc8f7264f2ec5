import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BerthError } from '../../common/errors.js';
import { macFor } from '../../agent/network/ipv4.js';
import type { InstanceNetwork, ProjectNetworking } from '../../agent/network/project-networks.js';

/** The pool every harness gives its ProjectNetworking: two /29 subnets of five instance addresses each. */
export const POOL = '10.213.77.0/28';
export const PREFIX = 29;

export interface ProjectNetworksHarness {
  /** Over POOL and PREFIX, with no project network yet. */
  networks: ProjectNetworking;
  /** Puts instance `uuid` on `n`, as a create does inside withAddress (a container, for the real one). */
  occupy(uuid: string, projectId: string, n: InstanceNetwork): Promise<void>;
  /** Removes instance `uuid` (the suite then releases its address). */
  vacate(uuid: string): Promise<void>;
  /** Removes what a test left: instances, then networks. */
  cleanup(): Promise<void>;
}

async function rejectsWith(p: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.deepEqual([err.code, err.status], [code, status], err.message);
    return true;
  });
}

/**
 * The project networks instances join (agent/network/project-networks.ts, `ProjectNetworking`):
 * the same rules for ProjectNetworks over a container runtime and the in-memory fake.
 */
export function projectNetworksConformance(label: string, setup: (projectPrefix: string) => Promise<ProjectNetworksHarness>): void {
  describe(`ProjectNetworking conformance: ${label}`, function () {
    this.timeout(60_000);
    let h: ProjectNetworksHarness;
    let prefix: string;
    const project = (n: number): string => `${prefix}-p${n}`;

    /** One instance of `projectId` on an address (fixed or picked); returns its network. */
    const create = (projectId: string, fixedIp: string | null = null): Promise<InstanceNetwork & { uuid: string }> =>
      h.networks.withAddress(projectId, fixedIp, async (n) => {
        const uuid = randomUUID();
        await h.occupy(uuid, projectId, n);
        return { ...n, uuid };
      });
    const remove = async (projectId: string, n: InstanceNetwork & { uuid: string }): Promise<void> => {
      await h.vacate(n.uuid);
      h.networks.release(projectId, n.net.ipv4);
    };

    beforeEach(async () => {
      prefix = `conformance-${randomUUID().slice(0, 8)}`;
      h = await setup(prefix);
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('gives a project a subnet from the pool: the gateway its first host address, instances from the second, the MAC from the address', async () => {
      const n = await create(project(1));
      assert.deepEqual([n.net.ipv4, n.net.macAddress, n.prefix, n.gateway], ['10.213.77.2', macFor('10.213.77.2'), 29, '10.213.77.1']);
      assert.deepEqual(
        (await h.networks.list()).filter((p) => p.project_id.startsWith(prefix)),
        [{ project_id: project(1), subnet: '10.213.77.0/29', gateway: '10.213.77.1' }],
      );
      assert.equal((await create(project(1))).net.ipv4, '10.213.77.3', 'the same network, the next address');
    });

    it('gives the next project the next subnet, and a third finds the pool exhausted', async () => {
      assert.equal((await create(project(1))).gateway, '10.213.77.1');
      const second = await create(project(2));
      assert.deepEqual([second.net.ipv4, second.gateway], ['10.213.77.10', '10.213.77.9']);
      assert.notEqual(second.net.name, (await create(project(1))).net.name);
      await rejectsWith(create(project(3)), 'SUBNET_POOL_EXHAUSTED', 503);
    });

    it('never hands one address out twice, to concurrent creates included', async () => {
      const got = await Promise.all([1, 2, 3].map(() => create(project(1))));
      assert.deepEqual(got.map((n) => n.net.ipv4).sort(), ['10.213.77.2', '10.213.77.3', '10.213.77.4']);
    });

    it('honours a fixed address inside the subnet and only while it is free', async () => {
      assert.equal((await create(project(1), '10.213.77.5')).net.ipv4, '10.213.77.5');
      await rejectsWith(create(project(1), '10.213.77.5'), 'INVALID_INPUT', 400);
      await rejectsWith(create(project(1), '10.213.77.1'), 'INVALID_INPUT', 400);
      await rejectsWith(create(project(1), '10.213.77.9'), 'INVALID_INPUT', 400);
      assert.equal((await create(project(1))).net.ipv4, '10.213.77.2');
    });

    it('frees an address whose use failed, and one released after its instance is removed', async () => {
      await assert.rejects(
        h.networks.withAddress(project(1), null, async (n) => {
          assert.equal(n.net.ipv4, '10.213.77.2');
          throw new Error('the create failed');
        }),
        /the create failed/,
      );
      const first = await create(project(1));
      assert.equal(first.net.ipv4, '10.213.77.2', 'the failed one left it free');
      assert.equal((await create(project(1))).net.ipv4, '10.213.77.3');
      await remove(project(1), first);
      assert.equal((await create(project(1))).net.ipv4, '10.213.77.2', 'released');
    });

    it('runs out of addresses in a subnet with SUBNET_POOL_EXHAUSTED', async () => {
      for (let i = 2; i <= 6; i++) assert.equal((await create(project(1))).net.ipv4, `10.213.77.${i}`);
      await rejectsWith(create(project(1)), 'SUBNET_POOL_EXHAUSTED', 503);
    });

    it('prunes only the networks no instance holds, and names their projects', async () => {
      await create(project(1));
      const gone = await create(project(2));
      await remove(project(2), gone);
      assert.deepEqual(await h.networks.prune(), [project(2)]);
      assert.deepEqual(
        (await h.networks.list()).map((p) => p.project_id).filter((p) => p.startsWith(prefix)),
        [project(1)],
      );
      assert.deepEqual(await h.networks.prune(), []);
      // The pruned subnet is free for the next project.
      assert.equal((await create(project(3))).gateway, '10.213.77.9');
    });

    it("removes one project's network after its last instance went, and not while an instance holds it or for a project it never had", async () => {
      const a = await create(project(1));
      const b = await create(project(1));
      const other = await create(project(2));
      assert.equal(await h.networks.pruneProject(project(9)), false, 'a project with no network');
      assert.equal(await h.networks.pruneProject(project(1)), false, 'two instances hold it');
      await remove(project(1), a);
      assert.equal(await h.networks.pruneProject(project(1)), false, 'one instance holds it');
      await remove(project(1), b);
      assert.equal(await h.networks.pruneProject(project(1)), true);
      assert.equal(await h.networks.pruneProject(project(1)), false, 'already gone');
      const left = (await h.networks.list()).map((p) => p.project_id).filter((p) => p.startsWith(prefix));
      assert.deepEqual(left, [project(2)], "the other project's network stays");
      await remove(project(2), other);
      // Its subnet is free again: the next project takes the first one.
      assert.equal((await create(project(3))).gateway, '10.213.77.1');
    });
  });
}
