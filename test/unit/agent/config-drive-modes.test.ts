import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigDrives } from '../../../agent/config-drive.js';

const modeOf = (path: string): number => statSync(path).mode & 0o777;

// Under systemd the agent runs with UMask=0077 (its state is private); the config drive it mounts
// into a guest must still be readable by whatever user the guest runs as.
describe('agent config drive under a private umask', () => {
  let dir: string;
  let umask: number;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-drive-modes-'));
    umask = process.umask(0o077);
  });
  afterEach(() => {
    process.umask(umask);
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the instance folder private and the drive's folders 0755 and files 0644", async () => {
    const drives = new ConfigDrives(dir, true);
    const files = new Map([
      ['openstack/latest/meta_data.json', Buffer.from('{}')],
      ['openstack/latest/user_data', Buffer.from('#!/bin/sh\n')],
    ]);
    const mounts = await drives.write('7f0e8b5c-4a49-4d7e-9a51-0c0f3f3c2a11', files, 'ssh-ed25519 AAAA test');
    const [config, keys] = mounts.map((m) => m.source);
    assert.equal(modeOf(join(config!, '..')), 0o700);
    for (const d of [config!, join(config!, 'openstack'), join(config!, 'openstack', 'latest')]) assert.equal(modeOf(d), 0o755, d);
    for (const f of ['meta_data.json', 'user_data']) assert.equal(modeOf(join(config!, 'openstack', 'latest', f)), 0o644, f);
    assert.equal(modeOf(keys!), 0o644);
  });
});
