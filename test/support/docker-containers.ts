import { parseEndpoint, requestJson } from '../../common/http-client.js';

/** Berth-labelled containers as dockerd itself reports them, for tests that check what exists. */
export const DOCKER = parseEndpoint(process.env.BERTH_TEST_DOCKER ?? 'unix:///var/run/docker.sock');
export const LABEL_INSTANCE = 'org.openstack.berth.instance';
export const LABEL_PROJECT = 'org.openstack.berth.project';

export interface LabelledContainer {
  Id: string;
  State: string;
  Labels: Record<string, string>;
}

export async function containersWithLabel(label: string): Promise<LabelledContainer[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
  return (await requestJson<LabelledContainer[]>(DOCKER, { path: `/v1.41/containers/json?all=1&filters=${filters}` }, 'dockerd')).body;
}

export async function removeContainers(containers: LabelledContainer[]): Promise<void> {
  for (const c of containers) {
    await requestJson(DOCKER, { method: 'DELETE', path: `/v1.41/containers/${c.Id}?force=1&v=1`, accept: [404, 409] }).catch(() => undefined);
  }
}
