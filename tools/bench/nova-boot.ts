/**
 * Boot through a real Nova (issue 7): `POST /servers` → the API shows ACTIVE, on a Berth node in
 * nova mode, against the same control plane with Berth replaced by a no-op reference compute
 * (stock nova-compute, fake.FakeDriver, from tools/dev/cloud.sh). The API is polled every 100 ms
 * with a Keystone token (the CLI's --wait polls every 5 s, which would hide the difference).
 * Rounds alternate between the two nodes; each server is deleted (and waited for) before the next.
 * Needs the test cloud: `bash tools/dev/cloud.sh start`. No Berth nova test may run meanwhile.
 */
import { execFileSync } from 'node:child_process';
import { parseEndpoint, requestJson } from '../../common/http-client.js';
import { keystoneSession } from '../../common/keystone/index.js';
import { loadTestCloud } from '../lib/cloud.js';
import { startNovaNode } from '../lib/nova-node.js';
import { elapsedMs, printResult, printTable, summarize } from './lib/report.js';
import { runBench } from './lib/run.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const BERTH_HOST = 'bench-berth';
const REF_HOST = 'bench-ref';
const TARGET = 1.5;

runBench('nova-boot', 20 * 60_000, async (run) => {
  const cloud = loadTestCloud();
  const admin = keystoneSession({
    auth_url: cloud.keystoneUrl,
    username: cloud.admin.username,
    password: cloud.admin.password,
    project_name: cloud.admin.projectName,
    user_domain_name: 'Default',
    project_domain_name: 'Default',
    region_name: 'RegionOne',
  });
  const compute = parseEndpoint(cloud.computeUrl);
  const api = async <T>(method: string, path: string, body?: unknown, accept: number[] = []) =>
    requestJson<T>(
      compute,
      {
        method,
        path,
        ...(body === undefined ? {} : { body }),
        accept,
        headers: { 'x-auth-token': await admin.token(), 'openstack-api-version': 'compute 2.90' },
      },
      'nova-api',
    );
  const flavorId = (await api<{ flavors: Array<{ id: string; name: string }> }>('GET', 'flavors')).body.flavors.find((f) => f.name === 'm1.tiny')!.id;

  run.log('starting the Berth node and the reference compute');
  const node = await startNovaNode(cloud, { host: BERTH_HOST, registry: process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000' });
  run.cleanup(() => node.stop());
  execFileSync('bash', ['tools/dev/cloud.sh', 'reference-compute', 'start', REF_HOST], { stdio: 'inherit' });
  run.cleanup(async () => execFileSync('bash', ['tools/dev/cloud.sh', 'reference-compute', 'stop', REF_HOST], { stdio: 'inherit' }));

  const until = async (what: string, check: () => Promise<boolean>, ms = 120_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const boot = async (host: string): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const created = await api<{ server: { id: string } }>('POST', 'servers', {
      server: { name: `bench-${host}`, imageRef: node.imageId, flavorRef: flavorId, networks: 'none', host },
    });
    const id = created.body.server.id;
    let ms = 0;
    try {
      await until(`${id} ACTIVE on ${host}`, async () => {
        const s = (await api<{ server: { status: string; fault?: { message: string } } }>('GET', `servers/${id}`)).body.server;
        if (s.status === 'ERROR') throw new Error(`server on ${host} went to ERROR: ${s.fault?.message ?? '?'}`);
        return s.status === 'ACTIVE';
      });
      ms = elapsedMs(t0);
    } finally {
      await api('DELETE', `servers/${id}`, undefined, [404]);
      await until(`${id} deleted`, async () => (await api('GET', `servers/${id}`, undefined, [404])).status === 404);
    }
    return ms;
  };

  // Both nodes must be mapped to a cell before the scheduler may place on them; the first boot waits for that.
  run.log('warm-up (waits for host mapping, loads the image into dockerd)');
  for (const host of [BERTH_HOST, REF_HOST]) {
    await until(
      `${host} bootable`,
      async () => {
        try {
          await boot(host);
          return true;
        } catch {
          return false;
        }
      },
      180_000,
    );
  }
  const berth: number[] = [];
  const ref: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    berth.push(await boot(BERTH_HOST));
    ref.push(await boot(REF_HOST));
    run.log(`round ${i + 1}/${ROUNDS}: berth ${berth.at(-1)!.toFixed(0)} ms, reference ${ref.at(-1)!.toFixed(0)} ms`);
  }
  const rows = [
    { path: 'Berth node (docker container)', ...summarize(berth) },
    { path: 'stock nova-compute, fake driver', ...summarize(ref) },
  ].map(({ path, n, median, p90, min, max }) => ({ path, n, 'median ms': median, 'p90 ms': p90, 'min ms': min, 'max ms': max }));
  printTable(`POST /servers → ACTIVE through nova-api, ${ROUNDS} sequential boots each, m1.tiny, --nic none`, rows);
  const ratio = summarize(berth).median / summarize(ref).median;
  process.stdout.write(`\nberth/reference at the median: ${ratio.toFixed(2)}x (the overhead a Berth node adds over a no-op compute)\n`);
  return printResult('nova-boot', [{ metric: 'ratio', value: ratio, target: TARGET }]);
});
