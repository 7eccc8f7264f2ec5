import { randomUUID } from 'node:crypto';
import type { GlanceImage } from '../../glance-bridge/client/types.js';

/**
 * Builds compute RPC requests as nova's conductor and API send them (nova object primitives,
 * `_context_*` keys), for the berth CLI, benchmarks and tests.
 */
const prim = (name: string, version: string, data: Record<string, unknown>) => ({
  'nova_object.name': name,
  'nova_object.namespace': 'nova',
  'nova_object.version': version,
  'nova_object.data': data,
});

const wireDate = (d: Date) => `${d.toISOString().slice(0, 19)}Z`;

export interface FlavorInput {
  vcpus: number;
  memory_mb: number;
  root_gb?: number;
  swap?: number;
  name?: string;
  extra_specs?: Record<string, string>;
}

export interface InstanceInput {
  uuid?: string;
  name?: string;
  image_id: string;
  flavor: FlavorInput;
  project_id?: string;
  user_id?: string;
  host?: string | null;
  vm_state?: string;
  task_state?: string | null;
  metadata?: Record<string, string>;
  user_data?: string | null;
  key_data?: string | null;
  /** The info cache's network_info (nova's VIF list); default none. */
  network_info?: unknown[];
}

export function flavorPrimitive(f: FlavorInput): Record<string, unknown> {
  return prim('Flavor', '1.2', {
    id: 1,
    name: f.name ?? `berth.${f.vcpus}c${f.memory_mb}m`,
    memory_mb: f.memory_mb,
    vcpus: f.vcpus,
    root_gb: f.root_gb ?? 1,
    ephemeral_gb: 0,
    flavorid: f.name ?? `berth-${f.vcpus}-${f.memory_mb}`,
    swap: f.swap ?? 0,
    rxtx_factor: 1.0,
    vcpu_weight: 0,
    disabled: false,
    is_public: true,
    extra_specs: f.extra_specs ?? {},
    description: null,
    created_at: wireDate(new Date()),
    updated_at: null,
    deleted_at: null,
    deleted: false,
  });
}

export function instancePrimitive(i: InstanceInput): Record<string, unknown> {
  const uuid = i.uuid ?? randomUUID();
  const name = i.name ?? `instance-${uuid.slice(0, 8)}`;
  const now = wireDate(new Date());
  return prim('Instance', '2.7', {
    id: 1,
    uuid,
    user_id: i.user_id ?? 'berth',
    project_id: i.project_id ?? 'berth',
    image_ref: i.image_id,
    hostname: name.toLowerCase().replace(/[^a-z0-9-]/g, '-'),
    display_name: name,
    display_description: name,
    power_state: 0,
    vm_state: i.vm_state ?? 'building',
    task_state: i.task_state === undefined ? 'scheduling' : i.task_state,
    memory_mb: i.flavor.memory_mb,
    vcpus: i.flavor.vcpus,
    root_gb: i.flavor.root_gb ?? 1,
    ephemeral_gb: 0,
    host: i.host ?? null,
    node: i.host ?? null,
    user_data: i.user_data ?? null,
    key_name: null,
    key_data: i.key_data ?? null,
    reservation_id: `r-${uuid.slice(0, 8)}`,
    launched_at: null,
    terminated_at: null,
    availability_zone: 'nova',
    locked: false,
    metadata: i.metadata ?? {},
    system_metadata: {},
    config_drive: '',
    flavor: flavorPrimitive(i.flavor),
    info_cache: prim('InstanceInfoCache', '1.5', { instance_uuid: uuid, network_info: JSON.stringify(i.network_info ?? []) }),
    created_at: now,
    updated_at: now,
    deleted_at: null,
    deleted: false,
  });
}

export function requestContext(project = 'berth', user = 'berth'): Record<string, unknown> {
  const requestId = `req-${randomUUID()}`;
  return {
    user,
    user_id: user,
    project,
    project_id: project,
    system_scope: null,
    domain: null,
    user_domain: null,
    project_domain: null,
    is_admin: true,
    read_only: false,
    show_deleted: false,
    auth_token: null,
    request_id: requestId,
    global_request_id: null,
    resource_uuid: null,
    roles: ['admin', 'member', 'reader'],
    user_identity: `${user} ${project} - - -`,
    is_admin_project: true,
    read_deleted: 'no',
    remote_address: '127.0.0.1',
    timestamp: new Date().toISOString().replace('Z', '').padEnd(26, '0'),
    quota_class: null,
    user_name: user,
    service_catalog: [],
    project_name: project,
  };
}

function withContext(method: string, args: Record<string, unknown>, ctx = requestContext(), version = '6.0'): Record<string, unknown> {
  const msg: Record<string, unknown> = { method, args, version };
  for (const [k, v] of Object.entries(ctx)) msg[`_context_${k}`] = v;
  return msg;
}

/** The Glance image dict nova passes as build_and_run_instance's `image`. */
export function imageDict(image: Pick<GlanceImage, 'id'> & Partial<GlanceImage>): Record<string, unknown> {
  return {
    id: image.id,
    name: image.name ?? null,
    status: image.status ?? 'active',
    visibility: image.visibility ?? 'public',
    owner: image.owner ?? null,
    size: image.size ?? 0,
    disk_format: image.disk_format ?? 'raw',
    container_format: image.container_format ?? 'docker',
    checksum: image.checksum ?? null,
    min_ram: 0,
    min_disk: 0,
    created_at: image.created_at ?? null,
    updated_at: image.updated_at ?? null,
    deleted: false,
    deleted_at: null,
    properties: {},
  };
}

export function buildAndRunInstance(instance: Record<string, unknown>, image: Record<string, unknown>, ctx?: Record<string, unknown>): Record<string, unknown> {
  return withContext(
    'build_and_run_instance',
    {
      instance,
      image,
      request_spec: null,
      filter_properties: {},
      accel_uuids: [],
      admin_password: null,
      injected_files: [],
      requested_networks: null,
      security_groups: ['default'],
      block_device_mapping: null,
      node: null,
      limits: {},
      host_list: [],
    },
    ctx,
  );
}

/** A request on an existing instance: `instance` plus the method's other arguments. */
export function instanceRequest(
  method: string,
  instance: Record<string, unknown>,
  extra: Record<string, unknown> = {},
  ctx?: Record<string, unknown>,
): Record<string, unknown> {
  return withContext(method, { instance, ...extra }, ctx);
}

export function terminateInstance(instance: Record<string, unknown>, ctx?: Record<string, unknown>): Record<string, unknown> {
  return instanceRequest('terminate_instance', instance, { bdms: prim('BlockDeviceMappingList', '1.18', { objects: [] }) }, ctx);
}

/**
 * nova's Migration (1.7) for a move of `instanceUuid` from `host`, as the conductor creates it:
 * on that host, or to `dest` (another node, which fills in its own name in prep_resize).
 * For an evacuation (nova-api makes it) `dest` may be null: the scheduler has not chosen yet.
 */
export function migrationPrimitive(m: {
  instance_uuid: string;
  host: string;
  dest?: string | null;
  uuid?: string;
  migration_type?: 'resize' | 'migration' | 'evacuation';
  status?: string;
}): Record<string, unknown> {
  const dest = m.dest === undefined ? m.host : m.dest;
  return prim('Migration', '1.7', {
    id: 1,
    uuid: m.uuid ?? randomUUID(),
    instance_uuid: m.instance_uuid,
    source_compute: m.host,
    dest_compute: dest,
    source_node: m.host,
    dest_node: dest,
    dest_host: null,
    status: m.status ?? 'pre-migrating',
    migration_type: m.migration_type ?? 'resize',
    hidden: false,
    memory_total: null,
    memory_processed: null,
    memory_remaining: null,
    disk_total: null,
    disk_processed: null,
    disk_remaining: null,
    cross_cell_move: false,
    user_id: null,
    project_id: null,
    created_at: wireDate(new Date()),
    updated_at: null,
    deleted_at: null,
    deleted: false,
  });
}

/** prep_resize as the conductor casts it to the chosen host (6.0). */
export function prepResize(
  instance: Record<string, unknown>,
  flavor: Record<string, unknown>,
  migration: Record<string, unknown>,
  host: string,
  ctx?: Record<string, unknown>,
): Record<string, unknown> {
  return instanceRequest(
    'prep_resize',
    instance,
    { image: {}, flavor, request_spec: null, filter_properties: {}, node: host, clean_shutdown: true, migration, host_list: [] },
    ctx,
  );
}

/** confirm_resize or revert_resize as nova-api casts them. */
export function resizeDecision(
  method: 'confirm_resize' | 'revert_resize',
  instance: Record<string, unknown>,
  migration: Record<string, unknown>,
  ctx?: Record<string, unknown>,
): Record<string, unknown> {
  return instanceRequest(method, instance, method === 'revert_resize' ? { migration, request_spec: null } : { migration }, ctx);
}

/** rebuild_instance onto `imageRef` in place (not an evacuation), as nova-api casts it. */
export function rebuildInstance(instance: Record<string, unknown>, origImageRef: string, imageRef: string): Record<string, unknown> {
  return instanceRequest('rebuild_instance', instance, {
    orig_image_ref: origImageRef,
    image_ref: imageRef,
    injected_files: [],
    new_pass: null,
    orig_sys_metadata: {},
    bdms: null,
    recreate: false,
    on_shared_storage: null,
    preserve_ephemeral: false,
    migration: null,
    scheduled_node: null,
    limits: null,
    request_spec: null,
    accel_uuids: [],
  });
}

/** shelve_instance into `imageId` (the `<name>-shelved` snapshot image nova-api creates first), as nova-api casts it. */
export function shelveInstance(instance: Record<string, unknown>, imageId: string, ctx?: Record<string, unknown>): Record<string, unknown> {
  return instanceRequest('shelve_instance', instance, { image_id: imageId, clean_shutdown: true, accel_uuids: [] }, ctx);
}

/** shelve_offload_instance of a shelved instance, as nova-api casts it. */
export function shelveOffloadInstance(instance: Record<string, unknown>, ctx?: Record<string, unknown>): Record<string, unknown> {
  return instanceRequest('shelve_offload_instance', instance, { clean_shutdown: true, accel_uuids: [] }, ctx);
}

/**
 * unshelve_instance of a shelved and offloaded instance on the node chosen (`node`), as nova's
 * conductor casts it after scheduling: `image` is the shelved snapshot's Glance image dict.
 */
export function unshelveInstance(
  instance: Record<string, unknown>,
  image: Record<string, unknown> | null,
  node: string,
  ctx?: Record<string, unknown>,
): Record<string, unknown> {
  return instanceRequest('unshelve_instance', instance, { image, filter_properties: { limits: {} }, node, request_spec: null, accel_uuids: [] }, ctx);
}

/**
 * rebuild_instance with recreate=True (an evacuation), as the conductor casts it to the chosen
 * host after nova-api made the `accepted` evacuation migration: no image_ref (the instance's own
 * image), the migration, the node when the scheduler chose one.
 */
export function evacuateInstance(
  instance: Record<string, unknown>,
  migration: Record<string, unknown> | null,
  o: { scheduledNode?: string | null; onSharedStorage?: boolean | null } = {},
  ctx?: Record<string, unknown>,
): Record<string, unknown> {
  return instanceRequest(
    'rebuild_instance',
    instance,
    {
      orig_image_ref: (instance['nova_object.data'] as { image_ref?: string }).image_ref ?? null,
      image_ref: null,
      injected_files: [],
      new_pass: null,
      orig_sys_metadata: {},
      bdms: null,
      recreate: true,
      on_shared_storage: o.onSharedStorage ?? null,
      preserve_ephemeral: false,
      migration,
      scheduled_node: o.scheduledNode ?? null,
      limits: null,
      request_spec: null,
      accel_uuids: [],
    },
    ctx,
  );
}
