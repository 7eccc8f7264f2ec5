import { randomUUID } from 'node:crypto';
import type { GlanceImage } from '../../../glance-bridge/client/types.js';
import { buildAndRunInstance, imageDict, instancePrimitive, requestContext, terminateInstance } from '../../lib/nova-requests.js';
import type { BenchClient, NotificationEvent } from './amqp-client.js';

/** Flavor of every benchmark instance: small, so that hundreds fit the machine. */
export const BENCH_FLAVOR = { vcpus: 1, memory_mb: 64 } as const;

export interface BenchNode {
  exchange: string;
  host: string;
}
export interface BenchBuild {
  uuid: string;
  build: Record<string, unknown>;
  terminate: Record<string, unknown>;
}

/** A build cast for one new instance of `image` in `project`, and the terminate cast that undoes it. */
export function benchBuild(image: Pick<GlanceImage, 'id'>, project: string, host: string): BenchBuild {
  const uuid = randomUUID();
  const instance = instancePrimitive({ uuid, image_id: image.id, flavor: BENCH_FLAVOR, project_id: project, host });
  const live = instancePrimitive({ uuid, image_id: image.id, flavor: BENCH_FLAVOR, project_id: project, host, vm_state: 'active', task_state: null });
  return { uuid, build: buildAndRunInstance(instance, imageDict(image), requestContext(project)), terminate: terminateInstance(live, requestContext(project)) };
}

const isEvent =
  (uuid: string, ...types: string[]) =>
  (e: NotificationEvent) =>
    e.uuid === uuid && types.includes(e.eventType);

/**
 * Casts the build and resolves with the arrival time of its `instance.create.end`;
 * `instance.create.error` or no event within `timeoutMs` rejects.
 */
export async function castBuild(client: BenchClient, node: BenchNode, b: BenchBuild, timeoutMs: number): Promise<{ sentNs: bigint; endNs: bigint }> {
  const done = client.waitForEvent(isEvent(b.uuid, 'instance.create.end', 'instance.create.error'), timeoutMs, `instance.create.end of ${b.uuid}`);
  const sentNs = process.hrtime.bigint();
  client.cast(node.exchange, `compute.${node.host}`, b.build);
  const event = await done;
  if (event.eventType !== 'instance.create.end') throw new Error(`build of ${b.uuid} failed (instance.create.error)`);
  return { sentNs, endNs: event.atNs };
}

/** Casts the terminate and waits for `instance.delete.end`. */
export async function castTerminate(client: BenchClient, node: BenchNode, b: BenchBuild, timeoutMs: number): Promise<void> {
  const done = client.waitForEvent(isEvent(b.uuid, 'instance.delete.end'), timeoutMs, `instance.delete.end of ${b.uuid}`);
  client.cast(node.exchange, `compute.${node.host}`, b.terminate);
  await done;
}

export interface BatchOutcome {
  sentNs: Map<string, bigint>;
  endNs: Map<string, bigint>;
  failed: string[];
  pending: string[];
}

/**
 * Casts every build at once and waits until each has `instance.create.end` or
 * `instance.create.error`. It stops early, with the builds still pending, when no build has
 * finished for `stallMs` (a build that ends in neither would otherwise hold the run) or after
 * `timeoutMs` in all.
 */
export async function castBatch(
  client: BenchClient,
  node: BenchNode,
  builds: readonly BenchBuild[],
  o: { stallMs: number; timeoutMs: number },
): Promise<BatchOutcome> {
  const out: BatchOutcome = { sentNs: new Map(), endNs: new Map(), failed: [], pending: [] };
  const pending = new Set(builds.map((b) => b.uuid));
  const started = Date.now();
  let lastProgress = started;
  await new Promise<void>((resolve) => {
    const finish = () => {
      clearInterval(watch);
      stop();
      resolve();
    };
    const stop = client.onEvent((e) => {
      if (!e.uuid || !pending.has(e.uuid) || !e.eventType.startsWith('instance.create.') || e.eventType === 'instance.create.start') return;
      if (e.eventType === 'instance.create.end') out.endNs.set(e.uuid, e.atNs);
      else out.failed.push(e.uuid);
      pending.delete(e.uuid);
      lastProgress = Date.now();
      if (pending.size === 0) finish();
    });
    const watch = setInterval(() => {
      if (Date.now() - lastProgress > o.stallMs || Date.now() - started > o.timeoutMs) finish();
    }, 500);
    for (const b of builds) {
      out.sentNs.set(b.uuid, process.hrtime.bigint());
      client.cast(node.exchange, `compute.${node.host}`, b.build);
    }
  });
  out.pending = [...pending];
  return out;
}

export const VERSIONED_KEYS = ['versioned_notifications.info', 'versioned_notifications.error'] as const;
