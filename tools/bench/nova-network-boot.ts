/**
 * Boot on a Neutron network through a real Nova (issue 16): `POST /servers` with
 * `networks: [{uuid: <the cloud's shared network>}]` → the API shows ACTIVE, against the same
 * node booting with `networks: none` (the project network), rounds alternating. The Neutron path
 * adds the port's allocation and binding, the plug, and the wait for network-vif-plugged (the
 * linuxbridge agent polls for taps, then applies the firewall; neutron-server batches its events
 * to nova). The plug is timed around the agent's NeutronPlumber: the tap made on its bridge
 * before the container starts, the guest end moved in after the start, and from the tap on its
 * bridge until Neutron reports the port ACTIVE (polled every 100 ms). The milestones of each boot
 * come from the node's `build stages` log line (driver/compute/build-stages.ts) and the plug's
 * moments; the second ratio leaves out the wait for Neutron alone (from when the node had the tap
 * on its bridge and the container running until network-vif-plugged came). The API is polled
 * every 100 ms with a Keystone token. Needs the test cloud with Neutron: `bash tools/dev/cloud.sh
 * start`. Target (issue 16): ≤ 1.5× at the median.
 */
import { parseEndpoint, requestJson } from '../../common/http-client.js';
import { keystoneSession } from '../../common/keystone/index.js';
import { NeutronPlumber, parkedName } from '../../agent/network/neutron-vifs.js';
import { loadTestCloud, neutronSection } from '../lib/cloud.js';
import { startNovaNode } from '../lib/nova-node.js';
import { elapsedMs, printResult, printTable, summarize } from './lib/report.js';
import { runBench } from './lib/run.js';
import { BootStages, NODE_OWN, type BootSeen, type PlugMoments } from './lib/boot-stages.js';
import { describeIntervals, neutronIntervals } from './lib/neutron-intervals.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const HOST = 'bench-berth-net';
/** Network boot / --nic none boot at the median. */
const TARGET = 1.5;

runBench('nova-network-boot', 20 * 60_000, async (run) => {
  const cloud = loadTestCloud();
  const l2Host = cloud.vars.BERTH_CLOUD_NEUTRON_HOST ?? '';
  if (!l2Host) throw new Error('the test cloud runs without Neutron (no BERTH_CLOUD_NEUTRON_HOST)');
  const session = (username: string, password: string, project: string) =>
    keystoneSession({
      auth_url: cloud.keystoneUrl,
      username,
      password,
      project_name: project,
      user_domain_name: 'Default',
      project_domain_name: 'Default',
      region_name: 'RegionOne',
    });
  const admin = session(cloud.admin.username, cloud.admin.password, cloud.admin.projectName);
  const call = async <T>(base: string, method: string, path: string, body?: unknown, accept: number[] = []) =>
    requestJson<T>(
      parseEndpoint(base),
      {
        method,
        path,
        ...(body === undefined ? {} : { body }),
        accept,
        headers: { 'x-auth-token': await admin.token(), 'openstack-api-version': 'compute 2.90' },
      },
      'openstack',
    );
  const api = <T>(method: string, path: string, body?: unknown, accept: number[] = []) => call<T>(cloud.computeUrl, method, path, body, accept);
  const neutronUrl = cloud.vars.BERTH_CLOUD_NEUTRON_URL ?? (await admin.endpoint('network', 'public'));
  const netName = cloud.vars.BERTH_CLOUD_NEUTRON_NET ?? 'berth-net';
  const nets = await call<{ networks: Array<{ id: string }> }>(neutronUrl, 'GET', `v2.0/networks?name=${encodeURIComponent(netName)}`);
  const netId = nets.body.networks[0]!.id;
  const flavorId = (await api<{ flavors: Array<{ id: string; name: string }> }>('GET', 'flavors')).body.flavors.find((f) => f.name === 'm1.tiny')!.id;

  // The plug, timed around the agent's plumber (the node runs in this process): the tap made on
  // its bridge (before the container starts), the guest end moved in after the start, and from the
  // tap on its bridge until Neutron has the port ACTIVE (watched without holding anything up).
  const stages = new BootStages();
  const tapMs: number[] = [];
  const plugMs: number[] = [];
  const toActiveMs: number[] = [];
  const watching: Array<Promise<void>> = [];
  const watchActive = (portId: string, from: number, m: PlugMoments) =>
    watching.push(
      (async () => {
        const deadline = Date.now() + 240_000;
        while (Date.now() < deadline) {
          const p = await call<{ port: { status: string } }>(neutronUrl, 'GET', `v2.0/ports/${portId}`, undefined, [404]);
          if (p.status === 404) return;
          if (p.body.port.status === 'ACTIVE') {
            m.portActive = Date.now();
            return void toActiveMs.push(m.portActive - from);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      })().catch(() => undefined),
    );
  const { prepare, attach } = NeutronPlumber.prototype;
  NeutronPlumber.prototype.prepare = async function (this: NeutronPlumber, uuid, vif) {
    if (await this.attached(vif.tap)) return prepare.call(this, uuid, vif);
    const t0 = Date.now();
    await prepare.call(this, uuid, vif);
    const m = stages.plug(uuid);
    m.tapMade = Date.now();
    tapMs.push(m.tapMade - t0);
    watchActive(vif.portId, m.tapMade, m);
  };
  NeutronPlumber.prototype.attach = async function (this: NeutronPlumber, a) {
    // A start the agent's event watch sees again finds the pair plugged: not a plug, not counted.
    const parked = await this.attached(parkedName(a.vif.tap));
    if (!parked && (await this.attached(a.vif.tap))) return attach.call(this, a);
    const m = stages.plug(a.uuid);
    m.plugStart = Date.now();
    await attach.call(this, a);
    m.plugEnd = Date.now();
    plugMs.push(m.plugEnd - m.plugStart);
    if (!parked) {
      // No tap before the start: the plug made it.
      m.tapMade = m.plugEnd;
      watchActive(a.vif.portId, m.tapMade, m);
    }
  };

  run.log('starting the Berth node with [neutron]');
  const node = await startNovaNode(cloud, {
    host: HOST,
    registry: process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000',
    log: stages.logger(),
    overrides: {
      neutron: neutronSection(cloud)!,
    },
  });
  run.cleanup(() => node.stop());

  const until = async (what: string, check: () => Promise<boolean>, ms = 240_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const seen: { network: BootSeen[]; none: BootSeen[] } = { network: [], none: [] };
  const boot = async (networks: 'none' | Array<{ uuid: string }>): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const posted = Date.now();
    const created = await api<{ server: { id: string } }>('POST', 'servers', {
      server: { name: `bench-net-${networks === 'none' ? 'none' : 'neutron'}`, imageRef: node.imageId, flavorRef: flavorId, networks, host: HOST },
    });
    const id = created.body.server.id;
    let ms = 0;
    try {
      await until(`${id} ACTIVE`, async () => {
        const s = (await api<{ server: { status: string; fault?: { message: string } } }>('GET', `servers/${id}`)).body.server;
        if (s.status === 'ERROR') throw new Error(`server went to ERROR: ${s.fault?.message ?? '?'}`);
        return s.status === 'ACTIVE';
      });
      ms = elapsedMs(t0);
      seen[networks === 'none' ? 'none' : 'network'].push({ id, posted, apiActive: Date.now() });
    } finally {
      await api('DELETE', `servers/${id}`, undefined, [404]);
      await until(`${id} deleted`, async () => (await api('GET', `servers/${id}`, undefined, [404])).status === 404);
    }
    return ms;
  };

  run.log('warm-up (waits for host mapping, loads the image into dockerd)');
  await until(
    `${HOST} bootable`,
    async () => {
      try {
        await boot('none');
        return true;
      } catch {
        return false;
      }
    },
    240_000,
  );
  await boot([{ uuid: netId }]);
  await Promise.all(watching.splice(0));
  tapMs.length = 0;
  plugMs.length = 0;
  toActiveMs.length = 0;
  seen.network.length = 0;
  seen.none.length = 0;
  const withNet: number[] = [];
  const none: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    withNet.push(await boot([{ uuid: netId }]));
    none.push(await boot('none'));
    await Promise.all(watching.splice(0));
    run.log(`round ${i + 1}/${ROUNDS}: network ${withNet.at(-1)!.toFixed(0)} ms, --nic none ${none.at(-1)!.toFixed(0)} ms`);
  }
  const rows = [
    { path: 'POST /servers, Neutron network → ACTIVE', ...summarize(withNet) },
    { path: 'POST /servers, --nic none → ACTIVE', ...summarize(none) },
    { path: 'the plug: tap made on its bridge (before the start)', ...summarize(tapMs) },
    { path: 'the plug: guest end moved in, addresses (after the start)', ...summarize(plugMs) },
    { path: 'the plug: tap on its bridge → port ACTIVE', ...summarize(toActiveMs) },
  ].map(({ path, n, median, p90, min, max }) => ({ path, n, 'median ms': median, 'p90 ms': p90, 'min ms': min, 'max ms': max }));
  printTable(`Boot through nova-api on a Berth node, ${ROUNDS} sequential boots each, m1.tiny`, rows);
  const netRows = stages.rows(seen.network, true);
  const noneRows = stages.rows(seen.none, false);
  printTable(`Milestones of a Neutron-network boot (ms after the POST, each a median over the boots)`, netRows);
  printTable(`Milestones of a --nic none boot`, noneRows);
  const ratio = summarize(withNet).median / summarize(none).median;
  const berthOnly = (BootStages.median(netRows, 'total without the wait for Neutron alone') ?? NaN) / summarize(none).median;
  process.stdout.write(`\nNeutron's intervals: ${describeIntervals(neutronIntervals(cloud.state))}\n`);
  process.stdout.write(`network/none at the median: ${ratio.toFixed(2)}x\n`);
  process.stdout.write(`network/none at the median without the wait for Neutron alone: ${berthOnly.toFixed(2)}x\n`);
  const own = (BootStages.median(netRows, NODE_OWN) ?? NaN) / (BootStages.median(noneRows, NODE_OWN) ?? NaN);
  process.stdout.write(`the node's own time, network/none at the median (what Berth adds): ${own.toFixed(2)}x\n`);
  return printResult('nova-network-boot', [
    { metric: 'ratio', value: ratio, target: TARGET },
    { metric: 'ratio_without_neutron_wait', value: berthOnly, target: TARGET },
    { metric: 'node_own_ratio', value: own, target: TARGET },
  ]);
});
