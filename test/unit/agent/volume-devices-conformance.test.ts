import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { volumeDevicesConformance } from '../../conformance/volume-devices.js';
import { FakeVolumeDevices } from '../../fakes/volume-devices.js';

volumeDevicesConformance('fake', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-volumes-fake-'));
  return { devices: new FakeVolumeDevices(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});
