import type { AgentClient } from '../../agent/client/types.js';
import type { Endpoint, MethodSpec } from '../rpc/dispatcher.js';
import type { RequestContext } from '../rpc/envelope.js';
import { notImplemented, novaError } from '../rpc/failure.js';
import { CINDER_REFUSAL } from './volume-refusal.js';
import { BerthError } from '../../common/errors.js';
import { InstanceArg } from '../objects/instance.js';
import { invalidField } from '../objects/primitive.js';
import type { ComputeManager } from './manager.js';
import { parseRequestedNetworks } from '../neutron/allocate.js';
import { isPrimitive } from '../nova/objects.js';
import { hostUptime, instanceDiagnostics, legacyDiagnostics } from './diagnostics.js';
import { moveMethods } from './move-endpoint.js';
import { shelveMethods } from './shelve-endpoint.js';
import { hostMethods } from './host-methods.js';
import { agentTailFor, novaConsoleTail } from './console.js';
import { serialConsoleMethods, standaloneConsoleAuthorizer, type ConsoleAuthorizer } from './serial-console.js';

/**
 * nova's compute RPC API, major version 6, as a Berth node implements it.
 *
 * Version history (of nova's ComputeAPI; Berth answers the same names and arguments):
 *   6.0: Wallaby, all 5.x compatibility removed
 *   6.1: rebuild_instance gains reimage_boot_volume
 *   6.2: rebuild_instance gains target_state
 */
export const COMPUTE_RPC_VERSION = '6.2';

/** Methods nova may send that a container node cannot perform: answered, never silently dropped. */
export const UNSUPPORTED_METHODS = [
  'rescue_instance',
  'unrescue_instance',
  'attach_volume',
  'detach_volume',
  'swap_volume',
  'reserve_block_device_name',
  'remove_volume_connection',
  'get_vnc_console',
  'get_spice_console',
  'get_mks_console',
  'get_rdp_console',
  'quiesce_instance',
  'unquiesce_instance',
  'volume_snapshot_create',
  'volume_snapshot_delete',
  'prep_snapshot_based_resize_at_dest',
  'prep_snapshot_based_resize_at_source',
  'finish_snapshot_based_resize_at_dest',
  'confirm_snapshot_based_resize_at_source',
  'revert_snapshot_based_resize_at_dest',
  'finish_revert_snapshot_based_resize_at_source',
  'drop_move_claim_at_destination',
  'check_instance_shared_storage',
  'add_fixed_ip_to_instance',
  'remove_fixed_ip_from_instance',
  'allow_share',
  'deny_share',
  'host_power_action',
] as const;

/** Why some of UNSUPPORTED_METHODS are refused, said in the failure (and the instance's fault). */
const UNSUPPORTED_REASONS: Partial<Record<(typeof UNSUPPORTED_METHODS)[number], string>> = Object.fromEntries(
  (['attach_volume', 'detach_volume', 'swap_volume', 'reserve_block_device_name'] as const).map((m) => [m, CINDER_REFUSAL]),
);

function imageIdOf(image: unknown, fallback: string): string {
  if (image === null || image === undefined) return fallback;
  if (typeof image !== 'object' || Array.isArray(image)) throw invalidField('image', 'expected a Glance image dict');
  const id = (image as Record<string, unknown>).id;
  if (typeof id !== 'string' || id === '') throw invalidField('image.id', 'missing');
  return id;
}

/** The instance argument, decoded by the endpoint's deserialize step. */
const instanceOf = (args: Record<string, unknown>): InstanceArg => args.instance as InstanceArg;

export function computeEndpoint(
  manager: ComputeManager,
  agent: AgentClient,
  consoles: { authorizer: ConsoleAuthorizer; enabled: boolean } = { authorizer: standaloneConsoleAuthorizer, enabled: true },
): Endpoint {
  const instanceOnly = (
    name: Parameters<ComputeManager['powerAction']>[2],
    run: (uuid: string, args: Record<string, unknown>) => Promise<unknown>,
  ): MethodSpec => ({
    required: ['instance'],
    optional: ['clean_shutdown', 'reboot_type', 'block_device_info'],
    long: true,
    handler: async (ctx, args) => {
      const uuid = instanceOf(args).uuid;
      await manager.powerAction(ctx, uuid, name, async () => run(uuid, args) as never);
    },
  });
  const methods: Record<string, MethodSpec> = {
    ...moveMethods(manager),
    // shelve_instance, shelve_offload_instance, unshelve_instance and start_instance (which also unshelves).
    ...shelveMethods(manager),
    ...hostMethods(agent, manager.maintenance, manager.log),
    ...serialConsoleMethods(agent, consoles.authorizer, { enabled: consoles.enabled }),
    build_and_run_instance: {
      required: ['instance', 'image', 'request_spec', 'filter_properties', 'accel_uuids'],
      optional: ['admin_password', 'injected_files', 'requested_networks', 'security_groups', 'block_device_mapping', 'node', 'limits', 'host_list'],
      long: true,
      handler: async (ctx, args) => {
        const instance = instanceOf(args).decode();
        const securityGroups = Array.isArray(args.security_groups) ? args.security_groups.filter((g): g is string => typeof g === 'string') : [];
        await manager.buildAndRun(ctx, instance, imageIdOf(args.image, instance.image_ref), {
          requested: parseRequestedNetworks(args.requested_networks),
          securityGroups,
        });
      },
    },
    terminate_instance: {
      required: ['instance', 'bdms'],
      long: true,
      handler: async (ctx, args) => {
        await manager.terminate(ctx, instanceOf(args).uuid);
      },
    },
    stop_instance: instanceOnly('stop', (uuid) => agent.instanceAction(uuid, { action: 'stop' })),
    pause_instance: instanceOnly('pause', (uuid) => agent.instanceAction(uuid, { action: 'pause' })),
    unpause_instance: instanceOnly('unpause', (uuid) => agent.instanceAction(uuid, { action: 'unpause' })),
    suspend_instance: instanceOnly('suspend', (uuid) => agent.instanceAction(uuid, { action: 'suspend' })),
    resume_instance: instanceOnly('resume', (uuid) => agent.instanceAction(uuid, { action: 'resume' })),
    soft_delete_instance: instanceOnly('soft_delete', (uuid) => agent.instanceAction(uuid, { action: 'stop' })),
    restore_instance: instanceOnly('restore', (uuid) => agent.instanceAction(uuid, { action: 'start' })),
    trigger_crash_dump: instanceOnly('trigger_crash_dump', (uuid) =>
      agent.instanceAction(uuid, { action: 'crash_dump' }).catch((err: unknown) => {
        // A guest that is not running has no process to signal: nova's answer for that case.
        if (err instanceof BerthError && err.code === 'INSTANCE_INVALID_STATE')
          throw novaError('InstanceNotRunning', 409, `Instance ${uuid} is not running.`, { instance_id: uuid });
        throw err;
      }),
    ),
    reboot_instance: {
      required: ['instance', 'block_device_info', 'reboot_type'],
      long: true,
      handler: async (ctx, args) => {
        const uuid = instanceOf(args).uuid;
        if (args.reboot_type !== 'SOFT' && args.reboot_type !== 'HARD') throw invalidField('reboot_type', 'expected SOFT or HARD');
        const hard = args.reboot_type === 'HARD';
        await manager.powerAction(ctx, uuid, hard ? 'reboot_hard' : 'reboot', () => agent.instanceAction(uuid, { action: 'reboot', hard }));
      },
    },
    rebuild_instance: {
      required: [
        'instance',
        'orig_image_ref',
        'image_ref',
        'injected_files',
        'new_pass',
        'orig_sys_metadata',
        'bdms',
        'recreate',
        'on_shared_storage',
        'preserve_ephemeral',
        'migration',
        'scheduled_node',
        'limits',
        'request_spec',
        'accel_uuids',
      ],
      optional: ['reimage_boot_volume', 'target_state'],
      long: true,
      handler: async (ctx, args) => {
        const uuid = instanceOf(args).uuid;
        if (args.recreate === true) {
          if (args.image_ref !== null && args.image_ref !== undefined && typeof args.image_ref !== 'string')
            throw invalidField('image_ref', 'expected an image id or null');
          return manager.evacuations.evacuate(ctx, {
            instance: instanceOf(args).decode(),
            imageRef: (args.image_ref as string | null | undefined) || null,
            migration: args.migration ?? null,
            onSharedStorage: typeof args.on_shared_storage === 'boolean' ? args.on_shared_storage : null,
            primitive: instanceOf(args).primitive,
          });
        }
        if (args.preserve_ephemeral === true)
          throw novaError('PreserveEphemeralNotSupported', 400, 'The current driver does not support preserving ephemeral partitions.');
        if (args.reimage_boot_volume === true) throw notImplemented('reimaging a boot volume');
        if (typeof args.image_ref !== 'string' || args.image_ref === '') throw invalidField('image_ref', 'expected an image id');
        await manager.imageActions.rebuild(ctx, uuid, args.image_ref);
      },
    },
    snapshot_instance: {
      required: ['image_id', 'instance'],
      long: true,
      handler: async (ctx, args) => {
        if (typeof args.image_id !== 'string' || args.image_id === '') throw invalidField('image_id', 'expected an image id');
        await manager.imageActions.snapshot(ctx, instanceOf(args).uuid, args.image_id);
      },
    },
    backup_instance: {
      required: ['image_id', 'instance', 'backup_type', 'rotation'],
      long: true,
      handler: async (ctx, args) => {
        if (typeof args.image_id !== 'string' || args.image_id === '') throw invalidField('image_id', 'expected an image id');
        if (typeof args.backup_type !== 'string' || args.backup_type === '') throw invalidField('backup_type', 'expected a string such as daily');
        if (typeof args.rotation !== 'number' || !Number.isInteger(args.rotation) || args.rotation < 0)
          throw invalidField('rotation', 'expected a non-negative integer');
        await manager.imageActions.snapshot(ctx, instanceOf(args).uuid, args.image_id, { type: args.backup_type, rotation: args.rotation });
      },
    },
    attach_interface: {
      required: ['instance', 'network_id', 'port_id', 'requested_ip'],
      optional: ['tag'],
      long: true,
      handler: async (ctx, args) => {
        const str = (k: string): string | null => (typeof args[k] === 'string' && args[k] !== '' ? (args[k] as string) : null);
        return manager.interfaces.attach(ctx, instanceOf(args).uuid, {
          network_id: str('network_id'),
          port_id: str('port_id'),
          requested_ip: str('requested_ip'),
          tag: str('tag'),
        });
      },
    },
    detach_interface: {
      required: ['instance', 'port_id'],
      long: true,
      handler: async (ctx, args) => {
        if (typeof args.port_id !== 'string' || args.port_id === '') throw invalidField('port_id', 'expected a port id');
        await manager.interfaces.detach(ctx, instanceOf(args).uuid, args.port_id);
      },
    },
    get_instance_diagnostics: {
      required: ['instance'],
      handler: async (_ctx, args) => {
        const row = await manager.require(instanceOf(args).uuid);
        return instanceDiagnostics(row, await agent.getInstance(row.uuid));
      },
    },
    get_diagnostics: {
      required: ['instance'],
      handler: async (_ctx, args) => {
        const row = await manager.require(instanceOf(args).uuid);
        return legacyDiagnostics(row, await agent.getInstance(row.uuid));
      },
    },
    set_admin_password: {
      required: ['instance', 'new_pass'],
      handler: async (_ctx, args) => {
        await manager.require(instanceOf(args).uuid);
        // Containers have no guest agent to set a password through; nova's answer for that case.
        throw novaError('SetAdminPasswdNotSupported', 400, 'Set admin password is not supported.');
      },
    },
    inject_network_info: {
      required: ['instance'],
      // The agent configures the container's network itself; there is nothing to inject.
      handler: async (_ctx, args) => {
        await manager.require(instanceOf(args).uuid);
      },
    },
    reset_network: {
      required: ['instance'],
      // Removed from nova's 6.x API; accepted for old callers, nothing to reset in a container.
      handler: async (_ctx, args) => {
        await manager.require(instanceOf(args).uuid);
      },
    },
    get_host_uptime: {
      required: [],
      handler: () => hostUptime(),
    },
    external_instance_event: {
      required: ['instances', 'events'],
      // Neutron's events (network-vif-plugged ...) go to the builds waiting for them; others
      // (Cinder's volume-extended ...) concern devices a container node does not attach.
      handler: async (ctx, args) => {
        if (!Array.isArray(args.events)) throw invalidField('events', 'expected a list of InstanceExternalEvent');
        await manager.externalEvents(
          ctx,
          args.events.map(externalEvent).filter((e) => e !== null),
        );
        return null;
      },
    },
    set_host_enabled: {
      required: ['enabled'],
      handler: async (_ctx, args) => {
        if (typeof args.enabled !== 'boolean') throw invalidField('enabled', 'expected true or false');
        return manager.setHostEnabled(args.enabled);
      },
    },
    get_console_output: {
      required: ['instance', 'tail_length'],
      handler: async (_ctx, args) => {
        const uuid = instanceOf(args).uuid;
        await manager.require(uuid);
        const tail = args.tail_length;
        if (tail !== null && (typeof tail !== 'number' || !Number.isInteger(tail) || tail < 0))
          throw invalidField('tail_length', 'expected a non-negative integer or null');
        const n = tail as number | null;
        return novaConsoleTail(await agent.consoleLog(uuid, agentTailFor(n)), n);
      },
    },
  };
  for (const name of UNSUPPORTED_METHODS) {
    methods[name] = {
      required: [],
      optional: ['instance'],
      handler: async (_ctx: RequestContext, args) => {
        const failure = notImplemented(name, UNSUPPORTED_REASONS[name]);
        // A cast has no caller to tell: the instance's fault record says what happened.
        if (args.instance) await manager.recordFault(instanceOf(args).uuid, 501, failure.message, 'NotImplementedError').catch(() => undefined);
        throw failure;
      },
    };
  }
  return {
    name: 'ComputeManager',
    namespace: null,
    version: COMPUTE_RPC_VERSION,
    methods,
    // The instance object of every message is the latest nova knows; nova mode echoes it back on save.
    deserialize: (args, spec) => {
      const raw = args.instance;
      if (raw === undefined || (!raw && !spec.required.includes('instance'))) return args;
      manager.plane.observe(raw);
      return { ...args, instance: new InstanceArg(raw) };
    },
  };
}

/** nova's BaseRPCAPI endpoint (namespace `baseapi`, version 1.1). */
export function baseApiEndpoint(service = 'compute'): Endpoint {
  return {
    name: 'BaseRPCAPI',
    namespace: 'baseapi',
    version: '1.1',
    methods: {
      ping: { required: ['arg'], handler: (_ctx, args) => ({ service, arg: args.arg }) },
      get_backdoor_port: { required: [], handler: () => null },
    },
  };
}

/** One InstanceExternalEvent (primitive or plain); null when it names no instance or event. */
function externalEvent(v: unknown): { instance_uuid: string; name: string; tag: string | null; status: string } | null {
  const d = (isPrimitive(v) ? v['nova_object.data'] : v) as Record<string, unknown> | null;
  if (!d || typeof d.instance_uuid !== 'string' || typeof d.name !== 'string') return null;
  return {
    instance_uuid: d.instance_uuid,
    name: d.name,
    tag: typeof d.tag === 'string' ? d.tag : null,
    status: typeof d.status === 'string' ? d.status : 'completed',
  };
}
