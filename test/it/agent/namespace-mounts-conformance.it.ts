import { randomUUID } from 'node:crypto';
import { PythonNamespaceMounts } from '../../../agent/volumes/ns-mounts.js';
import { namespaceMountsConformance } from '../../conformance/namespace-mounts.js';
import { TEST_IMAGE, TEST_LABEL, docker, execWithStatus } from './docker-helpers.js';

/** The real helper on a container of the real dockerd, run as Berth runs its guests (no capabilities). */
namespaceMountsConformance('python3 helper on a container', async () => {
  const name = `berth-ns-it-${randomUUID().slice(0, 8)}`;
  const created = await docker<{ Id: string }>('POST', `/containers/create?name=${name}`, {
    Image: TEST_IMAGE,
    Cmd: ['sleep', '600'],
    Labels: { [TEST_LABEL]: name },
    HostConfig: { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] },
  });
  const id = created.body.Id;
  await docker('POST', `/containers/${id}/start`);
  const pid = (await docker<{ State: { Pid: number } }>('GET', `/containers/${id}/json`)).body.State.Pid;
  const sh = (script: string) => execWithStatus(id, ['sh', '-c', script]);
  return {
    ns: new PythonNamespaceMounts(),
    pid,
    read: async (path) => {
      const r = await sh(`cat '${path}'`);
      return r.exitCode === 0 ? r.output : null;
    },
    mounted: async (target) => (await sh(`grep -q ' ${target} ' /proc/mounts`)).exitCode === 0,
    link: async (path, to) => {
      await sh(`ln -s '${to}' '${path}'`);
    },
    cleanup: async () => {
      await docker('DELETE', `/containers/${id}?force=1`, undefined, [404]);
    },
  };
});
