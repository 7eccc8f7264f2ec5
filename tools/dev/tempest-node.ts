// A Berth node joined to the test cloud of tools/dev/cloud.sh, kept running for a Tempest run
// (tools/dev/tempest.sh starts and stops it). It imports the registry's busybox test image,
// exports it to the cloud's Glance twice (image_ref and image_ref_alt: two images, one content),
// writes what tempest.conf needs as JSON to the file named by its first argument, and runs until
// SIGTERM or SIGINT, then leaves the cloud as it found it.
//   node --import tsx tools/dev/tempest-node.ts INFO_FILE
// Environment: BERTH_TEMPEST_HOST (the node's host name, default berth-tempest),
// BERTH_TEMPEST_PORT_BASE (the image store listens on BASE+292, the agent on BASE+393, consoles on
// BASE+10 to BASE+89; default 43000),
// BERTH_TEST_REGISTRY (default 127.0.0.1:5000), BERTH_CLOUD_STATE (default /var/lib/berth-cp).
// With a cloud that runs Neutron the node has [neutron] (ports bound to the cloud's L2 host).
import { writeFileSync } from 'node:fs';
import { createLogger } from '../../common/log.js';
import { loadTestCloud, neutronSection } from '../lib/cloud.js';
import { startNovaNode } from '../lib/nova-node.js';
import { serialProxyUrl } from '../lib/serial-proxy.js';

const infoFile = process.argv[2];
if (!infoFile) {
  process.stderr.write('usage: tempest-node.ts INFO_FILE\n');
  process.exit(2);
}
const host = process.env.BERTH_TEMPEST_HOST ?? 'berth-tempest';
const registry = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
const portBase = Number(process.env.BERTH_TEMPEST_PORT_BASE ?? 43000);
const cloud = loadTestCloud();
const log = createLogger('tempest-node', { secrets: [cloud.placement.password, cloud.glance.password, cloud.nova.password] });
const neutronOptions = neutronSection(cloud);
const neutron: Record<string, Record<string, unknown>> = neutronOptions ? { neutron: neutronOptions } : {};

const node = await startNovaNode(
  {
    transportUrl: cloud.transportUrl,
    keystoneUrl: cloud.keystoneUrl,
    glanceUrl: cloud.glanceUrl,
    serviceProject: cloud.serviceProject,
    placement: cloud.placement,
    glance: cloud.glance,
  },
  // Tempest deletes servers by the hundred: a short grace period keeps its waits short.
  {
    host,
    registry,
    log,
    // A second image of the same content: Tempest's image_ref_alt (rebuilds to another image,
    // servers listed by image).
    altImage: true,
    overrides: {
      docker: { stop_timeout: 2 },
      image_store: { listen: `127.0.0.1:${portBase + 292}` },
      agent: { listen: `127.0.0.1:${portBase + 393}` },
      // Consoles through the cloud's nova-serialproxy, on ports of this node's own range.
      serial_console: { base_url: serialProxyUrl(cloud), port_range: `${portBase + 10}:${portBase + 90}`, proxyclient_address: '127.0.0.1' },
      ...neutron,
    },
  },
);
writeFileSync(infoFile, JSON.stringify({ host, image_id: node.imageId, image_alt_id: node.imageAltId, pid: process.pid }) + '\n');
log.info({ host, image_id: node.imageId }, 'Berth node joined the test cloud');

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping the Berth node');
  node.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, 'the Berth node did not stop cleanly');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
