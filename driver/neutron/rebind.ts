import type { Logger } from '../../common/log.js';
import { checkBound } from './allocate.js';
import type { NeutronClient, NeutronPort } from './client.js';

/**
 * The ports of an instance that came to this host (a resize or cold migration finished or
 * reverted, an evacuation, an unshelve elsewhere) bound to it, as nova's
 * `_update_port_binding_for_instance` does in `migrate_instance_finish` and
 * `setup_instance_network_on_host`: each port whose `binding:host_id` names another host gets this
 * one (device and owner kept), so the L2 agent of this host wires its tap. Ports already bound
 * here are left alone. A binding Neutron could not make (no live L2 agent for this host) is
 * PORT_BINDING_FAILED, as at a build. Returns the ports as Neutron has them now, in the same order.
 */
export async function bindPortsToHost(neutron: NeutronClient, ports: NeutronPort[], host: string, log: Logger): Promise<NeutronPort[]> {
  const out: NeutronPort[] = [];
  for (const p of ports) {
    if (p['binding:host_id'] === host) {
      out.push(p);
      continue;
    }
    const bound = await neutron.bindPort(p.id, { device_id: p.device_id, device_owner: p.device_owner, host });
    checkBound(bound, host);
    log.info({ instance: p.device_id, port_id: p.id, from: p['binding:host_id'] || null, to: host }, 'port bound to this host');
    out.push(bound);
  }
  return out;
}
