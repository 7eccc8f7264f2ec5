import { randomUUID } from 'node:crypto';
import { DockerRuntime } from '../../../agent/runtime/docker.js';
import type { NetworkAttach } from '../../../agent/runtime/docker-create-body.js';
import { LABEL_HOST, LABEL_INSTANCE, LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { containerRuntimeConformance } from '../../conformance/container-runtime.js';
import { API_VERSION, DOCKER_URL, TEST_IMAGE, TEST_LABEL, docker, imageIdOf, removeLabelled, saveImage } from './docker-helpers.js';

/** The Docker runtime, with project networks attached by the agent (the default) or by dockerd. */
function dockerConformance(networkAttach: NetworkAttach): void {
  containerRuntimeConformance(`docker (network_attach = ${networkAttach})`, async () => {
    const host = `conformance-${randomUUID().slice(0, 8)}`;
    const runtime = new DockerRuntime({ hostUrl: DOCKER_URL, apiVersion: API_VERSION, host, networkAttach });
    const imageId = await imageIdOf(TEST_IMAGE);
    const cleanup = async (): Promise<void> => {
      await removeLabelled(`${LABEL_PROJECT}=conformance`);
      await removeLabelled(`${TEST_LABEL}=conformance`);
    };
    await cleanup();
    return {
      runtime,
      imageId,
      archive: async () => ({ stream: await saveImage(TEST_IMAGE), imageId }),
      pullable: async () => ({ reference: TEST_IMAGE, imageId }),
      unknownReference: `${TEST_IMAGE.slice(0, TEST_IMAGE.indexOf('/'))}/berth/no-such-image-${randomUUID().slice(0, 8)}:latest`,
      addForeignContainer: async () => {
        await docker('POST', `/containers/create?name=not-berth-${randomUUID()}`, { Image: imageId, Labels: { [TEST_LABEL]: 'conformance' } });
      },
      host,
      addBerthContainer: async (uuid, owner) => {
        const labels = { [LABEL_INSTANCE]: uuid, [LABEL_PROJECT]: 'conformance', ...(owner === null ? {} : { [LABEL_HOST]: owner }) };
        await docker('POST', `/containers/create?name=berth-${uuid}`, { Image: imageId, Labels: labels });
      },
      cleanup,
    };
  });
}

dockerConformance('agent');
dockerConformance('engine');
