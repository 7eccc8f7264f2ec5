import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../context.js';
import { printList, printObject, spinner } from '../output.js';
import { isUuid } from '../../../common/koa.js';

type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

function mib(n: number | null | undefined): string { return n ? `${(n / 1048576).toFixed(1)} MiB` : '0'; }

export function registerImage(program: Command, run: Run): void {
  const image = program.command('image').description('images in the image service');

  image.command('import <source>')
    .description('import a registry image (docker://HOST/REPO:TAG or @sha256:...) into the image store')
    .option('--name <name>', 'image name (default: the reference)')
    .action((source: string, o) => run(async (ctx) => {
      if (!/^(docker:\/\/)?[^\s/]+\/\S+$/.test(source)) throw new UsageError(`not a registry reference: ${JSON.stringify(source)} (expected docker://HOST/REPO:TAG)`);
      const spin = spinner(`importing ${source}`);
      try {
        const img = await ctx.images().importImage(source.startsWith('docker://') ? source : `docker://${source}`, {
          name: o.name,
          onProgress: (p) => spin.update(`importing ${source}: ${p.status} ${mib(p.bytes_done)}${p.bytes_total ? ` of ${mib(p.bytes_total)}` : ''}`),
        });
        spin.stop();
        printObject(img as unknown as Record<string, unknown>, ctx.format);
      } catch (err) {
        spin.stop();
        throw err;
      }
    }));

  image.command('list').description('images').action(() => run(async (ctx) => {
    const images = await ctx.images().listImages();
    printList(['id', 'name', 'status', 'size', 'docker_digest'], images as unknown as Record<string, unknown>[], ctx.format);
  }));

  image.command('show <id>').description('one image').action((id: string) => run(async (ctx) => {
    if (!isUuid(id as unknown)) throw new UsageError(`not an image id: ${JSON.stringify(id)}`);
    const img = await ctx.images().getImage(id);
    if (!img) throw new UsageError(`no image with id ${id}`);
    printObject(img as unknown as Record<string, unknown>, ctx.format);
  }));

  image.command('delete <id>').description('delete an image').action((id: string) => run(async (ctx) => {
    if (!isUuid(id as unknown)) throw new UsageError(`not an image id: ${JSON.stringify(id)}`);
    await ctx.images().deleteImage(id);
    process.stdout.write(`deleted ${id}\n`);
  }));
}
