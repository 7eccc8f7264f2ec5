import type { InstanceSpec } from '../../agent/client/types.js';
import type { NovaExtras } from '../notify/payload.js';
import type { Instance } from '../objects/instance.js';
import type { RequestContext } from '../rpc/envelope.js';
import type { NewInstance } from './store.js';

/** What the agent needs to create the instance's container. */
export function agentSpec(i: Instance, imageId: string, ctx: RequestContext): InstanceSpec {
  const fixed = i.addresses.find((a) => a.version === 4);
  return {
    image_id: imageId,
    flavor: { vcpus: i.flavor.vcpus, memory_mb: i.flavor.memory_mb, root_gb: i.flavor.root_gb, swap: i.flavor.swap, extra_specs: i.flavor.extra_specs },
    name: i.display_name,
    hostname: i.hostname || `instance-${i.uuid.slice(0, 8)}`,
    project_id: i.project_id,
    user_id: i.user_id,
    metadata: i.metadata,
    user_data: i.user_data,
    key_data: i.key_data,
    key_name: i.key_name,
    fixed_ip: fixed?.address ?? null,
    ...(typeof ctx.request_id === 'string' ? { request_id: ctx.request_id } : {}),
  };
}

/** The record of a build on this node: the instance as nova sent it, its agent spec and the fields notifications echo. */
export function buildRecord(instance: Instance, imageId: string, ctx: RequestContext, where: { host: string; node: string }): NewInstance {
  const nova: NovaExtras = {
    display_description: null,
    reservation_id: instance.reservation_id,
    availability_zone: instance.availability_zone,
    key_name: instance.key_name,
    metadata: instance.metadata,
    addresses: instance.addresses,
  };
  return {
    uuid: instance.uuid,
    display_name: instance.display_name,
    hostname: instance.hostname,
    project_id: instance.project_id,
    user_id: instance.user_id,
    image_ref: imageId,
    flavor: instance.flavor,
    host: where.host,
    node: where.node,
    spec: agentSpec(instance, imageId, ctx),
    nova,
  };
}
