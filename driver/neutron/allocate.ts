import { BerthError, describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { isPrimitive } from '../nova/objects.js';
import { neutronError, type NeutronClient, type NeutronPort } from './client.js';
import { buildNetworkInfo, type ModelVif } from './network-info.js';

/** One entry of nova's NetworkRequestList (`--network`, `--port`, `--nic net-id=X,v4-fixed-ip=A`). */
export interface NetworkRequest {
  network_id: string | null;
  port_id: string | null;
  address: string | null;
}

/**
 * The requests of a build_and_run_instance: `none` for `--nic none`, `auto` for nova's
 * auto-allocated topology, or the list (possibly empty: a legacy request with no networks).
 */
export function parseRequestedNetworks(value: unknown): NetworkRequest[] | 'none' | 'auto' {
  if (value === null || value === undefined) return [];
  const list = isPrimitive(value) ? (value['nova_object.data'].objects as unknown[]) : Array.isArray(value) ? value : [];
  const out: NetworkRequest[] = [];
  for (const item of list) {
    const d = (isPrimitive(item) ? item['nova_object.data'] : item) as Record<string, unknown>;
    const str = (k: string): string | null => (typeof d[k] === 'string' && d[k] !== '' ? (d[k] as string) : null);
    out.push({ network_id: str('network_id'), port_id: str('port_id'), address: str('address') });
  }
  if (out.length === 1 && out[0]!.network_id === 'none' && !out[0]!.port_id) return 'none';
  if (out.length === 1 && out[0]!.network_id === 'auto' && !out[0]!.port_id) return 'auto';
  return out;
}

export interface InstanceNetworking {
  uuid: string;
  project_id: string;
  availability_zone: string | null;
  /** Security group names of the server (`--security-group`); empty: the project's default. */
  security_groups: string[];
}

/**
 * Allocates for a build what nova-compute's `allocate_for_instance` does: a port per requested
 * network (with the requested address), or the requested port bound to this instance, each bound
 * to `host` with device_id = the instance and device_owner = `compute:<az>`; then network_info
 * built from Neutron's answer. A port whose binding did not give a `bridge` VIF fails the build
 * (PORT_BINDING_FAILED, VIF_TYPE_UNSUPPORTED); on any failure what was done is undone.
 */
export async function allocateForInstance(
  neutron: NeutronClient,
  inst: InstanceNetworking,
  requests: NetworkRequest[],
  host: string,
  log: Logger,
): Promise<ModelVif[]> {
  const binding = { device_id: inst.uuid, device_owner: `compute:${inst.availability_zone ?? 'nova'}`, host };
  const created: string[] = [];
  const bound: string[] = [];
  const ports: NeutronPort[] = [];
  try {
    const names = inst.security_groups.length ? [...new Set(inst.security_groups)] : [];
    const groups = names.length ? await neutron.securityGroupIds(inst.project_id, names) : undefined;
    for (const r of requests) {
      if (r.port_id) {
        const given = await neutron.showPort(r.port_id);
        if (given.device_id && given.device_id !== inst.uuid) {
          throw neutronError('PORT_IN_USE', `port ${given.id} is in use by device ${given.device_id}`, { port_id: given.id, device_id: given.device_id });
        }
        bound.push(given.id);
        ports.push(await neutron.bindPort(given.id, binding));
      } else if (r.network_id) {
        const port = await neutron.createPort({
          network_id: r.network_id,
          project_id: inst.project_id,
          ...binding,
          ...(r.address ? { fixed_ips: [{ ip_address: r.address }] } : {}),
          ...(groups ? { security_groups: groups } : {}),
        });
        created.push(port.id);
        ports.push(port);
      }
    }
    for (const p of ports) {
      checkBound(p, host);
      if (p['binding:vif_type'] !== 'bridge') {
        throw neutronError(
          'VIF_TYPE_UNSUPPORTED',
          `port ${p.id} has VIF type ${JSON.stringify(p['binding:vif_type'])}; a Berth node plugs only "bridge" VIFs`,
          {
            port_id: p.id,
            vif_type: p['binding:vif_type'],
          },
        );
      }
    }
    return await buildNetworkInfo(neutron, ports, new Set(bound), new Set(created));
  } catch (err) {
    for (const id of created)
      await neutron.deletePort(id).catch((e: unknown) => log.warn({ port_id: id, err: describeError(e) }, 'could not delete a port of a failed build'));
    for (const id of bound)
      await neutron.unbindPort(id).catch((e: unknown) => log.warn({ port_id: id, err: describeError(e) }, 'could not unbind a port of a failed build'));
    throw err;
  }
}

/**
 * The end of a delete (nova's `deallocate_for_instance`): the instance's ports are deleted, except
 * those the caller made (preserve_on_delete in the saved network_info), which are unbound and kept.
 * A port already gone is fine. Resolves with the ids handled.
 */
export async function deallocateForInstance(
  neutron: NeutronClient,
  uuid: string,
  saved: Array<Pick<ModelVif, 'id' | 'preserve_on_delete'>>,
  /** Only this port of the instance (a detach); default all. */
  only?: string,
): Promise<{ deleted: string[]; unbound: string[] }> {
  const preserve = new Set(saved.filter((v) => v.preserve_on_delete).map((v) => v.id));
  const deleted: string[] = [];
  const unbound: string[] = [];
  for (const p of await neutron.listPorts({ device_id: uuid })) {
    if (only !== undefined && p.id !== only) continue;
    if (preserve.has(p.id)) {
      try {
        await neutron.unbindPort(p.id);
        unbound.push(p.id);
      } catch (err) {
        if (!(err instanceof BerthError && err.code === 'NEUTRON_NOT_FOUND')) throw err;
      }
    } else {
      await neutron.deletePort(p.id);
      deleted.push(p.id);
    }
  }
  return { deleted, unbound };
}

/** The VIFs of an instance's saved network_info (its info cache's JSON, or the list itself). */
export function savedNetworkInfo(value: unknown): ModelVif[] {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v) as unknown;
    } catch {
      return [];
    }
  }
  return Array.isArray(v) ? (v.filter((x) => typeof x === 'object' && x !== null && typeof (x as ModelVif).id === 'string') as ModelVif[]) : [];
}

/** PORT_BINDING_FAILED unless Neutron bound port `p` to `host` (no live L2 agent there: unbound or failed). */
export function checkBound(p: NeutronPort, host: string): void {
  if (p['binding:vif_type'] !== 'binding_failed' && p['binding:vif_type'] !== 'unbound') return;
  throw neutronError(
    'PORT_BINDING_FAILED',
    `binding port ${p.id} to host ${host} failed: Neutron has no live L2 agent for that host on network ${p.network_id}`,
    {
      port_id: p.id,
      host,
      vif_type: p['binding:vif_type'],
    },
  );
}
