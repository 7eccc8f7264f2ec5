import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type AgentHarness } from './harness.js';

describe('agent config drive', () => {
  let h: AgentHarness;
  afterEach(async () => {
    await h.close();
  });

  const drive = (uuid: string, file: string): string => join(h.statePath, 'instances', uuid, 'config', 'openstack', 'latest', file);
  const json = (uuid: string, file: string): Record<string, unknown> => JSON.parse(readFileSync(drive(uuid, file), 'utf8')) as Record<string, unknown>;

  it('writes meta_data.json, user_data and network_data.json and mounts them read-only', async () => {
    h = await startHarness();
    const uuid = randomUUID();
    const status = await h.client.createInstance(
      uuid,
      h.spec({
        user_data: Buffer.from('#cloud-config\nhostname: x\n').toString('base64'),
        key_data: 'ssh-ed25519 AAAA test@host',
        key_name: 'mykey',
      }),
    );
    assert.deepEqual(json(uuid, 'meta_data.json'), {
      uuid,
      name: 'vm-1',
      hostname: 'vm-1',
      project_id: 'demo',
      launch_index: 0,
      availability_zone: 'nova',
      public_keys: { mykey: 'ssh-ed25519 AAAA test@host' },
      keys: [{ name: 'mykey', type: 'ssh', data: 'ssh-ed25519 AAAA test@host' }],
      meta: { role: 'test' },
    });
    assert.equal(readFileSync(drive(uuid, 'user_data'), 'utf8'), '#cloud-config\nhostname: x\n');
    const net = json(uuid, 'network_data.json') as { links: Array<Record<string, unknown>>; networks: Array<Record<string, unknown>>; services: unknown[] };
    assert.equal(net.networks[0]?.ip_address, status.ip_address);
    assert.equal(net.networks[0]?.netmask, '255.255.255.0');
    assert.equal(net.networks[0]?.link, net.links[0]?.id);
    assert.deepEqual(net.services, [{ type: 'dns', address: '127.0.0.11' }]);
    const spec = h.runtime.containers.get(uuid)!.spec;
    assert.deepEqual(spec.mounts, [{ source: join(h.statePath, 'instances', uuid, 'config'), target: '/run/berth/config' }]);
    assert.equal(spec.network?.macAddress, net.links[0]?.ethernet_mac_address);
  });

  it('leaves user_data out when there is none and names an unnamed key "default"', async () => {
    h = await startHarness();
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec({ key_data: 'ssh-rsa AAAB k' }));
    assert.equal(existsSync(drive(uuid, 'user_data')), false);
    assert.deepEqual(json(uuid, 'meta_data.json').public_keys, { default: 'ssh-rsa AAAB k' });
  });

  it('mounts authorized_keys only when inject_ssh_keys is on and there are keys', async () => {
    h = await startHarness({ injectSshKeys: true });
    const withKeys = randomUUID();
    await h.client.createInstance(withKeys, h.spec({ key_data: 'ssh-rsa AAAB k' }));
    const keys = join(h.statePath, 'instances', withKeys, 'authorized_keys');
    assert.deepEqual(h.runtime.containers.get(withKeys)!.spec.mounts?.[1], { source: keys, target: '/root/.ssh/authorized_keys' });
    assert.equal(readFileSync(keys, 'utf8'), 'ssh-rsa AAAB k\n');
    const without = randomUUID();
    await h.client.createInstance(without, h.spec());
    assert.equal(h.runtime.containers.get(without)!.spec.mounts?.length, 1);
  });

  it('removes the drive on delete and after a failed create', async () => {
    h = await startHarness();
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    assert.ok(existsSync(join(h.statePath, 'instances', uuid)));
    await h.client.deleteInstance(uuid);
    assert.equal(existsSync(join(h.statePath, 'instances', uuid)), false);
    const failing = randomUUID();
    h.runtime.failNextStart = true;
    await assert.rejects(h.client.createInstance(failing, h.spec()));
    assert.equal(existsSync(join(h.statePath, 'instances', failing)), false);
    assert.equal(h.runtime.containers.has(failing), false);
  });

  it('refuses a key_name that is not a key pair name', async () => {
    h = await startHarness();
    const res = await h.raw('PUT', `/v1/instances/${randomUUID()}`, { body: JSON.stringify({ ...h.spec(), key_name: '../x\n' }) });
    assert.equal(res.status, 400);
  });
});
