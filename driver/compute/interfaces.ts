import type { AgentClient, InstanceSpec } from '../../agent/client/types.js';
import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { InstanceRow } from '../db/models.js';
import { savedNetworkInfo, type NetworkRequest } from '../neutron/allocate.js';
import { vifPlug, type ModelVif } from '../neutron/network-info.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError, RpcFailure } from '../rpc/failure.js';
import type { InstancePorts, StoredNeutron } from './instance-ports.js';
import type { InstanceActionName } from './states.js';
import type { InstanceStore } from './store.js';

type StoredSpec = InstanceSpec & { neutron?: StoredNeutron };

/** The manager's guarded, recorded action on one instance (ComputeManager.powerAction). */
export type InstanceAction = (ctx: RequestContext, uuid: string, name: InstanceActionName, effect: (row: InstanceRow) => Promise<unknown>) => Promise<void>;

export interface InterfacesDeps {
  store: Pick<InstanceStore, 'setImage'>;
  agent: Pick<AgentClient, 'attachVif' | 'detachVif'>;
  /** Neutron's ports of instances; without it (no [neutron]) interfaces cannot be attached. */
  ports?: InstancePorts;
  action: InstanceAction;
  log: Logger;
}

/** attach_interface's arguments, as nova-api sends them. */
export interface AttachRequest {
  network_id: string | null;
  port_id: string | null;
  requested_ip: string | null;
  tag: string | null;
}

/**
 * nova-compute's attach_interface and detach_interface for a Berth instance: the port allocated
 * and bound to this host (or the caller's port bound to the instance) as at a build, its VIF
 * plugged into the running container by the agent, the network_info saved as the info cache, and
 * `instance.interface_attach` / `instance.interface_detach` announced (start, end or error, with
 * the instance action, through the manager's recorded action). Detach unplugs first, then
 * deletes the port (or unbinds one the caller made).
 */
export class Interfaces {
  constructor(private readonly d: InterfacesDeps) {}

  /** Resolves with the new VIF (nova's VIF model), whose `id` nova-api shows. */
  async attach(ctx: RequestContext, uuid: string, req: AttachRequest): Promise<ModelVif> {
    const ports = this.d.ports;
    if (!ports) throw novaError('AttachInterfaceNotSupported', 400, `Attaching interfaces is not supported for instance ${uuid}.`, { instance_uuid: uuid });
    if (req.tag) throw novaError('NetworkInterfaceTaggedAttachNotSupported', 400, 'Tagged network interface attach is not supported by this compute node.', {});
    let attached: ModelVif | undefined;
    await this.d.action(ctx, uuid, 'attach_interface', async (row) => {
      const { neutron, ...spec } = JSON.parse(row.spec) as StoredSpec;
      const stored: StoredNeutron = neutron ?? { requests: [], security_groups: [], availability_zone: null };
      const request: NetworkRequest = { network_id: req.network_id, port_id: req.port_id, address: req.requested_ip };
      const inst = { uuid, project_id: row.project_id, availability_zone: stored.availability_zone, security_groups: stored.security_groups };
      const vif = await ports.attachPort(inst, request);
      try {
        await this.d.agent.attachVif(uuid, vifPlug(vif));
      } catch (err) {
        this.d.log.warn({ instance: uuid, port_id: vif.id, err: describeError(err) }, 'attach interface failed; releasing the port');
        await ports.releasePort(uuid, vif.id, vif.preserve_on_delete).catch(() => undefined);
        if (err instanceof RpcFailure) throw err;
        throw novaError('InterfaceAttachFailed', 500, `Failed to attach network adapter device to ${uuid}: ${describeError(err)}`, { instance_uuid: uuid });
      }
      const networkInfo = [...savedNetworkInfo(stored.network_info ?? []).filter((v) => v.id !== vif.id), vif];
      const requests = req.port_id ? [...stored.requests, { network_id: null, port_id: req.port_id, address: null }] : stored.requests;
      // A rebuild makes the container again from the record: it gets the attached VIF too.
      const vifs = spec.vifs ? { vifs: [...spec.vifs.filter((v) => v.portId !== vif.id), vifPlug(vif)] } : {};
      await this.d.store.setImage(row, row.image_ref, { ...spec, ...vifs, neutron: { ...stored, requests, network_info: networkInfo } });
      await ports.saveInfoCache(ctx, uuid, networkInfo);
      attached = vif;
    });
    return attached!;
  }

  async detach(ctx: RequestContext, uuid: string, portId: string): Promise<void> {
    const ports = this.d.ports;
    if (!ports) throw novaError('PortNotFound', 404, `Port ${portId} is not attached`, { port_id: portId });
    await this.d.action(ctx, uuid, 'detach_interface', async (row) => {
      const { neutron, ...spec } = JSON.parse(row.spec) as StoredSpec;
      const saved = savedNetworkInfo(neutron?.network_info ?? []);
      const condemned = saved.find((v) => v.id === portId);
      if (!neutron || !condemned) throw novaError('PortNotFound', 404, `Port ${portId} is not attached`, { port_id: portId });
      try {
        await this.d.agent.detachVif(uuid, portId);
      } catch (err) {
        this.d.log.warn({ instance: uuid, port_id: portId, err: describeError(err) }, 'detach interface failed');
        throw novaError('InterfaceDetachFailed', 500, `Failed to detach network adapter device from ${uuid}`, { instance_uuid: uuid });
      }
      const preserve = condemned.preserve_on_delete || neutron.requests.some((r) => r.port_id === portId);
      await ports.releasePort(uuid, portId, preserve);
      const networkInfo = saved.filter((v) => v.id !== portId);
      const requests = neutron.requests.filter((r) => r.port_id !== portId);
      const vifs = spec.vifs ? { vifs: spec.vifs.filter((v) => v.portId !== portId) } : {};
      await this.d.store.setImage(row, row.image_ref, { ...spec, ...vifs, neutron: { ...neutron, requests, network_info: networkInfo } });
      await ports.saveInfoCache(ctx, uuid, networkInfo);
    });
  }
}
