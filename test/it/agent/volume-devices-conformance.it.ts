import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../common/log.js';
import { LoopVolumeDevices } from '../../../agent/volumes/loop-devices.js';
import { volumeDevicesConformance } from '../../conformance/volume-devices.js';

/** Loop devices, ext4 and mounts of this host (the agent runs as root). */
volumeDevicesConformance('loop devices', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-volumes-it-'));
  return { devices: new LoopVolumeDevices({ root, log: silentLogger() }), cleanup: () => rm(root, { recursive: true, force: true }) };
});
