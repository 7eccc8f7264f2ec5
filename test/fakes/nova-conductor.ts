import { randomUUID } from 'node:crypto';
import { RemoteFailure } from '../../driver/rpc/caller.js';
import type { ConductorClient } from '../../driver/nova/conductor.js';
import { novaTime, type Primitive } from '../../driver/nova/objects.js';

type Row = Record<string, unknown>;
const fail = (cls: string, message: string, code = 404) => new RemoteFailure(cls, 'nova.exception', message, { code });

/**
 * nova-conductor's object API over an in-memory "database", with the behaviour a compute node
 * relies on: Service/ComputeNode lookups (null vs ComputeHostNotFound), creation filling ids,
 * last_seen_up moving only when report_count grows, Instance.save's expected_task_state guard,
 * destroy, and faults. `calls` records each call as `Name.method`.
 */
export class FakeConductor implements ConductorClient {
  readonly services: Row[] = [];
  readonly nodes: Row[] = [];
  readonly instances = new Map<string, Row>();
  readonly faults: Row[] = [];
  /** Migrations by uuid, as the conductor created them for a move; Migration.save updates them. */
  readonly migrations = new Map<string, Row>();
  /** Each instance's info cache: its network_info as the JSON text nova stores. */
  readonly infoCaches = new Map<string, string>();
  readonly calls: string[] = [];
  readonly saves: Array<{ uuid: string; changes: Row; kwargs: Record<string, unknown> }> = [];
  private nextId = 1;

  addInstance(p: Primitive): void {
    this.instances.set(String(p['nova_object.data'].uuid), { ...p['nova_object.data'] });
  }

  private prim(name: string, version: string, data: Row): Primitive {
    return { 'nova_object.name': name, 'nova_object.namespace': 'nova', 'nova_object.version': version, 'nova_object.data': { ...data } };
  }

  async objectClassActionVersions(objname: string, objmethod: string, args: unknown[]): Promise<unknown> {
    this.calls.push(`${objname}.${objmethod}`);
    if (objname === 'Service' && objmethod === 'get_by_host_and_binary') {
      const s = this.services.find((r) => r.host === args[0] && r.binary === args[1] && !r.deleted);
      return s ? this.prim('Service', '1.22', s) : null;
    }
    if (objname === 'ComputeNode' && objmethod === 'get_by_host_and_nodename') {
      const n = this.nodes.find((r) => r.host === args[0] && r.hypervisor_hostname === args[1]);
      if (!n) throw fail('ComputeHostNotFound', `Compute host ${String(args[0])} could not be found.`);
      return this.prim('ComputeNode', '1.19', n);
    }
    if (objname === 'Instance' && objmethod === 'get_by_uuid') {
      const i = this.instances.get(String(args[0]));
      if (!i || i.deleted) throw fail('InstanceNotFound', `Instance ${String(args[0])} could not be found.`);
      return this.prim('Instance', '2.7', i);
    }
    if (objname === 'MigrationList' && objmethod === 'get_by_filters') {
      // nova's migration_get_all_by_filters: each filter a value or a list of values.
      const filters = (args[0] ?? {}) as Row;
      const match = (m: Row) => Object.entries(filters).every(([k, v]) => (Array.isArray(v) ? v.includes(m[k]) : m[k] === v));
      const objects = [...this.migrations.values()].filter(match).map((m) => this.prim('Migration', '1.7', m));
      return this.prim('MigrationList', '1.5', { objects });
    }
    throw new RemoteFailure('NoSuchMethod', 'oslo_messaging.rpc.dispatcher', `no ${objname}.${objmethod} in the fake`, {});
  }

  async objectAction(objinst: Primitive, objmethod: string, kwargs: Record<string, unknown> = {}): Promise<[Record<string, unknown>, unknown]> {
    const name = objinst['nova_object.name'];
    this.calls.push(`${name}.${objmethod}`);
    const data = objinst['nova_object.data'];
    const changes = Object.fromEntries((objinst['nova_object.changes'] ?? []).map((k) => [k, data[k]]));
    const now = novaTime(new Date());
    if (objmethod === 'create') {
      const filled: Row = { id: this.nextId++, created_at: now, updated_at: null, deleted_at: null, deleted: false };
      if (name === 'Service') Object.assign(filled, { uuid: randomUUID(), disabled: false, disabled_reason: null, last_seen_up: null, forced_down: false });
      if (name === 'ComputeNode') Object.assign(filled, { mapped: 0, service_id: null });
      const row = { ...changes, ...filled };
      if (name === 'Service') this.services.push(row);
      else if (name === 'ComputeNode') this.nodes.push(row);
      else if (name === 'InstanceFault') this.faults.push(row);
      else if (name === 'Instance') this.instances.set(String(row.uuid), row);
      else throw fail('ObjectActionError', `cannot create ${name}`, 400);
      return [{ ...filled, obj_what_changed: [] }, null];
    }
    if (objmethod === 'save' && name === 'InstanceInfoCache') {
      const uuid = String(data.instance_uuid);
      const row = this.instances.get(uuid);
      if (!row || row.deleted) throw fail('InstanceInfoCacheNotFound', `Info cache for instance ${uuid} could not be found.`);
      if ('network_info' in changes) this.infoCaches.set(uuid, String(changes.network_info));
      return [{ updated_at: now, obj_what_changed: [] }, null];
    }
    if (objmethod === 'save') {
      if (name === 'Instance') return [this.saveInstance(String(data.uuid), data, changes, kwargs, now), null];
      if (name === 'Migration') {
        const m = this.migrations.get(String(data.uuid));
        if (!m) throw fail('MigrationNotFound', `Migration ${String(data.uuid)} could not be found.`);
        Object.assign(m, changes, { updated_at: now });
        return [{ updated_at: now, obj_what_changed: [] }, null];
      }
      const table = name === 'Service' ? this.services : this.nodes;
      const row = table.find((r) => r.id === data.id);
      if (!row) throw fail(name === 'Service' ? 'ServiceNotFound' : 'ComputeHostNotFound', `${name} ${String(data.id)} could not be found.`);
      const updates: Row = { updated_at: now };
      if (name === 'Service' && Number(changes.report_count ?? row.report_count) > Number(row.report_count)) updates.last_seen_up = now;
      Object.assign(row, changes, updates);
      return [{ ...updates, obj_what_changed: [] }, null];
    }
    if (objmethod === 'destroy' && name === 'Instance') {
      const row = this.instances.get(String(data.uuid));
      if (!row || row.deleted) throw fail('InstanceNotFound', `Instance ${String(data.uuid)} could not be found.`);
      Object.assign(row, { deleted: true, deleted_at: now });
      return [{ deleted: true, deleted_at: now, obj_what_changed: [] }, null];
    }
    throw fail('ObjectActionError', `${name}.${objmethod} is not in the fake`, 400);
  }

  private saveInstance(uuid: string, data: Row, changes: Row, kwargs: Record<string, unknown>, now: string): Row {
    const row = this.instances.get(uuid);
    if (!row || row.deleted) throw fail('InstanceNotFound', `Instance ${uuid} could not be found.`);
    if ('expected_task_state' in kwargs) {
      const e = kwargs.expected_task_state;
      const expected = Array.isArray(e) ? e : [e];
      if (!expected.includes(row.task_state ?? null)) {
        const cls = row.task_state === 'deleting' ? 'UnexpectedDeletingTaskStateError' : 'UnexpectedTaskStateError';
        const [want, got] = [{ task_state: e }, { task_state: row.task_state ?? null }];
        // nova's InstanceUpdateConflict keeps NovaException's default code, 500.
        throw new RemoteFailure(
          cls,
          'nova.exception',
          `Conflict updating instance ${uuid}. Expected: ${JSON.stringify(want)}. Actual: ${JSON.stringify(got)}`,
          {
            instance_uuid: uuid,
            expected: want,
            actual: got,
            code: 500,
          },
        );
      }
    }
    Object.assign(row, changes, flavorsSaved(data, changes), { updated_at: now });
    this.saves.push({ uuid, changes, kwargs });
    return { updated_at: now, obj_what_changed: [] };
  }
}

const FLAVORS = ['flavor', 'old_flavor', 'new_flavor'] as const;

/**
 * nova's Instance._save_flavor: a change to any of the three flavors writes all three as the
 * saved object holds them (one JSON column), so a stale old_flavor in the object overwrites the
 * stored one. A flavor the object does not carry is lazy-loaded by nova, i.e. kept.
 */
function flavorsSaved(data: Row, changes: Row): Row {
  if (!FLAVORS.some((k) => k in changes)) return {};
  return Object.fromEntries(FLAVORS.filter((k) => k in data).map((k) => [k, data[k] ?? null]));
}
