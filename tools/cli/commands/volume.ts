import type { Command } from 'commander';
import { agentClientAuth } from '../../../agent/client/token.js';
import type { Volume, VolumeChange } from '../../../agent/client/volumes.js';
import { createVolumeClient, type VolumeClient } from '../../../agent/client/volumes-http.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../context.js';
import { printList, printObject } from '../output.js';
import type { Run } from './server-args.js';
import { forEach, resolveServer } from './server-lookup.js';

/**
 * The local volumes of the node's agent ([agent] url). Volumes stay on their host, so a command
 * aimed at another node (--host) is refused rather than given this node's volumes.
 */
export function volumeClient(ctx: CliContext): VolumeClient {
  if (ctx.host !== ctx.config.DEFAULT.host) {
    throw new UsageError(`volumes are local to a node: run this on ${ctx.host} (or with its configuration), not with --host from ${ctx.config.DEFAULT.host}`);
  }
  return createVolumeClient({ url: ctx.config.agent.url, ...agentClientAuth(ctx.config), timeoutMs: 120_000 });
}

const COLUMNS = ['id', 'name', 'project_id', 'size_gb', 'status', 'instance_uuid', 'mount_point'];

const row = (v: Volume): Record<string, unknown> => ({
  ...v,
  instance_uuid: v.attachment?.instance_uuid ?? null,
  mount_point: v.attachment?.mount_point ?? null,
  used_bytes: v.usage?.used_bytes ?? null,
  size_bytes: v.usage?.size_bytes ?? null,
});

const show = (ctx: CliContext, v: Volume): void => {
  const { usage: _usage, attachment: _attachment, ...rest } = row(v) as Record<string, unknown> & { usage?: unknown; attachment?: unknown };
  printObject(ctx.format === 'table' ? rest : (v as unknown as Record<string, unknown>), ctx.format);
};

/** `VOL:/mount/point`, as `server create --volume` takes it. */
export function parseVolumeMount(spec: string): { volume: string; mountPoint: string } {
  const i = spec.indexOf(':');
  if (i <= 0 || i === spec.length - 1) throw new UsageError(`--volume wants VOLUME:/mount/point, got ${JSON.stringify(spec)}`);
  return { volume: spec.slice(0, i), mountPoint: spec.slice(i + 1) };
}

/** What an attach or detach means for the server, said where a person reads it. */
export function explainChange(ctx: CliContext, change: VolumeChange, verb: 'attached' | 'detached'): void {
  if (change.applies === 'next-create') {
    process.stderr.write(`berth: volume ${change.volume.name} is ${verb}; the server's container sees it at its next rebuild\n`);
  } else if (change.applies === 'next-start') {
    process.stderr.write(`berth: volume ${change.volume.name} is ${verb}; the server is not running: it is mounted when the server starts\n`);
  }
  show(ctx, change.volume);
}

export function registerVolume(program: Command, run: Run): void {
  const volume = program.command('volume').description("local volumes of the node's agent: ext4 filesystems a project's servers mount");

  volume
    .command('create <name>')
    .description('create a volume of --size GiB, owned by --project')
    .requiredOption('--size <gib>', 'size in GiB', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`--size wants a whole number of GiB, got ${JSON.stringify(v)}`);
      return n;
    })
    .option('--project <id>', 'owning project', 'berth')
    .action((name: string, o: { size: number; project: string }) =>
      run(async (ctx) => {
        show(ctx, await volumeClient(ctx).create({ name, project_id: o.project, size_gb: o.size }));
      }),
    );

  volume
    .command('list')
    .description("volumes, every project's unless --project")
    .option('--project <id>', 'only this project')
    .action((o: { project?: string }) =>
      run(async (ctx) => {
        const vols = await volumeClient(ctx).list(o.project);
        printList(COLUMNS, vols.map(row), ctx.format);
      }),
    );

  volume
    .command('show <volume>')
    .description('a volume by id, or by name with --project')
    .option('--project <id>', 'the owning project (to name a volume by its name)')
    .action((ref: string, o: { project?: string }) =>
      run(async (ctx) => {
        show(ctx, await volumeClient(ctx).get(ref, o.project));
      }),
    );

  volume
    .command('delete <volume...>')
    .description('delete volumes and their data (refused while attached)')
    .option('--project <id>', 'the owning project (to name volumes by their names)')
    .action((refs: string[], o: { project?: string }) =>
      run(async (ctx) => {
        const client = volumeClient(ctx);
        await forEach(refs, async (ref) => {
          await client.delete(ref, o.project);
          if (ctx.format === 'table') process.stdout.write(`deleted ${ref}\n`);
        });
      }),
    );
}

/** `server volume attach|detach|list`. */
export function registerServerVolume(server: Command, run: Run): void {
  const group = server.command('volume').description("a server's local volumes");

  group
    .command('attach <server> <volume>')
    .description("attach a volume of the server's project at --mount: at once if the server runs, else when it starts ([volumes] hot_attach)")
    .requiredOption('--mount <path>', 'absolute path inside the server')
    .action((ref: string, vol: string, o: { mount: string }) =>
      run(async (ctx) => {
        const view = await resolveServer(ctx, ref);
        const change = await volumeClient(ctx).attach(vol, { instance_uuid: view.uuid, project_id: view.project_id, mount_point: o.mount });
        explainChange(ctx, change, 'attached');
      }),
    );

  group
    .command('detach <server> <volume>')
    .description('detach a volume from the server')
    .action((ref: string, vol: string) =>
      run(async (ctx) => {
        const view = await resolveServer(ctx, ref);
        const client = volumeClient(ctx);
        const v = await client.get(vol, view.project_id);
        if (v.attachment?.instance_uuid !== view.uuid) throw new UsageError(`volume ${v.name} is not attached to server ${view.uuid}`);
        explainChange(ctx, await client.detach(v.id, view.project_id), 'detached');
      }),
    );

  group
    .command('list <server>')
    .description("the server's volumes")
    .action((ref: string) =>
      run(async (ctx) => {
        const view = await resolveServer(ctx, ref);
        const vols = (await volumeClient(ctx).list(view.project_id)).filter((v) => v.attachment?.instance_uuid === view.uuid);
        printList(COLUMNS, vols.map(row), ctx.format);
      }),
    );
}

/**
 * `server create --volume VOL:/path`: attaches each volume to the instance about to be built, so
 * its container binds them from its first start; all or none (a refusal detaches the ones before).
 */
export async function attachForCreate(ctx: CliContext, uuid: string, projectId: string, specs: readonly string[]): Promise<void> {
  if (!specs.length) return;
  const client = volumeClient(ctx);
  const parsed = specs.map(parseVolumeMount);
  const done: string[] = [];
  try {
    for (const { volume, mountPoint } of parsed) {
      const change = await client.attach(volume, { instance_uuid: uuid, project_id: projectId, mount_point: mountPoint });
      done.push(change.volume.id);
    }
  } catch (err) {
    for (const id of done) await client.detach(id, projectId).catch(() => undefined);
    throw err;
  }
}
