import type { TestCloud } from './cloud.js';

/** The nova-serialproxy of the test cloud (tools/dev/cloud.sh: port 26083 plus the cloud's offset), as [serial_console] base_url. */
export function serialProxyUrl(cloud: TestCloud): string {
  return cloud.vars.BERTH_CLOUD_SERIALPROXY_URL ?? `ws://127.0.0.1:${26083 + Number(cloud.vars.BERTH_CLOUD_PORT_OFFSET ?? '0')}/`;
}
