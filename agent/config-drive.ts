import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncPath, nodeFileOps, replaceFileDurably } from '../common/fs.js';
import type { InstanceSpec } from './client/types.js';
import type { ReadOnlyMount } from './runtime/types.js';
import { netmaskOf } from './network/ipv4.js';
import type { InstanceNetwork } from './network/project-networks.js';
import { ENGINE_RESOLVER } from './network/resolv.js';

/** Where the guest finds its config drive (docs/agent-api.md). */
export const CONFIG_DRIVE_TARGET = '/run/berth/config';
export const AUTHORIZED_KEYS_TARGET = '/root/.ssh/authorized_keys';

/** Nova's default availability zone; Berth has no zones of its own. */
const AVAILABILITY_ZONE = 'nova';
/** The files of the OpenStack config-drive layout cloud-init reads, relative to the drive root. */
export function configDriveFiles(uuid: string, spec: InstanceSpec, network: InstanceNetwork | null, nameservers: string[]): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const json = (v: unknown): Buffer => Buffer.from(`${JSON.stringify(v, null, 2)}\n`);
  const keyName = spec.key_name ?? 'default';
  files.set(
    'openstack/latest/meta_data.json',
    json({
      uuid,
      name: spec.name,
      hostname: spec.hostname,
      project_id: spec.project_id,
      launch_index: 0,
      availability_zone: AVAILABILITY_ZONE,
      public_keys: spec.key_data ? { [keyName]: spec.key_data } : {},
      keys: spec.key_data ? [{ name: keyName, type: 'ssh', data: spec.key_data }] : [],
      meta: spec.metadata,
    }),
  );
  if (spec.user_data !== null) files.set('openstack/latest/user_data', Buffer.from(spec.user_data, 'base64'));
  files.set('openstack/latest/network_data.json', json(networkData(uuid, network, nameservers)));
  return files;
}

function networkData(uuid: string, network: InstanceNetwork | null, nameservers: string[]): unknown {
  if (!network) return { links: [], networks: [], services: [] };
  const link = `tap${uuid.slice(0, 11)}`;
  return {
    links: [{ id: link, type: 'bridge', ethernet_mac_address: network.net.macAddress, mtu: 1500, vif_id: uuid }],
    networks: [
      {
        id: 'network0',
        type: 'ipv4',
        link,
        ip_address: network.net.ipv4,
        netmask: netmaskOf(network.prefix),
        routes: [{ network: '0.0.0.0', netmask: '0.0.0.0', gateway: network.gateway }],
        network_id: network.net.name,
      },
    ],
    services: nameservers.map((address) => ({ type: 'dns', address })),
  };
}

/**
 * Per-instance files under `$state_path/instances/<uuid>/`. Each write builds the new tree
 * beside the old one and renames it into place, so a container never mounts a half-written drive.
 */
export class ConfigDrives {
  /**
   * `nameservers`: the resolvers the guest's resolv.conf will name, for network_data.json (Docker's
   * embedded one unless told otherwise).
   */
  constructor(
    private readonly statePath: string,
    private readonly injectSshKeys: boolean,
    readonly nameservers: () => Promise<string[]> = () => Promise.resolve([ENGINE_RESOLVER]),
  ) {}

  private dir(uuid: string): string {
    return join(this.statePath, 'instances', uuid);
  }

  async write(uuid: string, files: Map<string, Buffer>, keyData: string | null): Promise<ReadOnlyMount[]> {
    const dir = this.dir(uuid);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const staging = join(dir, `.config-${randomBytes(6).toString('hex')}`);
    try {
      // The guest may read its config drive as any user: its folders and files are world-readable
      // inside the private instance folder, set with chmod because the service's umask (0077
      // under systemd) narrows the mode given at creation.
      const dirs = [...new Set([...files.keys()].map((rel) => dirname(join(staging, rel))))];
      for (const d of dirs) await mkdir(d, { recursive: true });
      await Promise.all([...files].map(([rel, content]) => writeReadable(join(staging, rel), content).then(() => fsyncPath(join(staging, rel)))));
      const made = new Set<string>();
      for (const d of dirs) for (let at = d; at.startsWith(staging); at = dirname(at)) made.add(at);
      for (const at of made) await chmod(at, 0o755);
      // Every file and folder on disk before the tree is renamed into place, the rename after it.
      for (const at of made) await fsyncPath(at);
      await rm(join(dir, 'config'), { recursive: true, force: true });
      await rename(staging, join(dir, 'config'));
      await fsyncPath(dir);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    const mounts: ReadOnlyMount[] = [{ source: join(dir, 'config'), target: CONFIG_DRIVE_TARGET }];
    if (this.injectSshKeys && keyData) {
      const keys = join(dir, 'authorized_keys');
      await replaceFileDurably(keys, keyData.endsWith('\n') ? keyData : `${keyData}\n`, 0o644, {
        ...nodeFileOps,
        writeFile: (path, data) => writeReadable(path, data),
      });
      mounts.push({ source: keys, target: AUTHORIZED_KEYS_TARGET });
    }
    return mounts;
  }

  /** Succeeds when nothing is there. */
  async remove(uuid: string): Promise<void> {
    await rm(this.dir(uuid), { recursive: true, force: true });
  }
}

/** A file the guest reads: 0644 whatever the umask. */
async function writeReadable(path: string, content: string | Buffer): Promise<void> {
  await writeFile(path, content, { mode: 0o644 });
  await chmod(path, 0o644);
}
