import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../usage-error.js';
import { printList, printObject, spinner } from '../output.js';
import { isUuid } from '../../../common/koa.js';
import { forEach } from './server-lookup.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { GlanceImage, ImageService } from '../../../glance-bridge/client/types.js';

type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

function mib(n: number | null | undefined): string {
  return n ? `${(n / 1048576).toFixed(1)} MiB` : '0';
}

const VISIBILITIES = ['public', 'private', 'shared', 'community'];

/**
 * With --to-glance, [glance] names the cloud's Glance, so the bridge is reached at its own
 * `[image_store] listen` (or --os-image-url). The caller's OpenStack credentials (--os-cloud,
 * OS_*) give the token when present; else, with Keystone auth on the bridge, the [glance] user's.
 */
function bridgeClient(ctx: CliContext): ImageService {
  const listen = ctx.config.image_store.listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
  const url = ctx.osImageUrl || `http://${listen}`;
  const session = ctx.osSession();
  // A noauth bridge believes X-Roles: the operator running this CLI acts as its admin, so imports
  // stay public and exports may be (with Keystone, the token's roles decide).
  const auth = session ? { session } : ctx.config.image_store.auth_strategy === 'keystone' ? { keystone: ctx.config.glance } : { roles: ['admin'] };
  // The export answers only once the whole image is in the remote Glance.
  return createImageClient({ url, ...auth, requestTimeoutMs: 3_600_000 });
}

export function registerImage(program: Command, run: Run): void {
  const image = program.command('image').description('images in the image service');

  image
    .command('import <source>')
    .description('import a registry image (docker://HOST/REPO:TAG or @sha256:...) into the image store')
    .option('--name <name>', 'image name (default: the reference)')
    .option('--to-glance', "then copy it into the Glance of [glance] (api_url, or the Keystone catalog's image endpoint), with the [glance] credentials")
    .option('--visibility <visibility>', `visibility of the copy in Glance (with --to-glance): ${VISIBILITIES.join(', ')}`, 'private')
    .action((source: string, o: { name?: string; toGlance?: boolean; visibility: string }) =>
      run(async (ctx) => {
        if (!/^(docker:\/\/)?[^\s/]+\/\S+$/.test(source))
          throw new UsageError(`not a registry reference: ${JSON.stringify(source)} (expected docker://HOST/REPO:TAG)`);
        if (!VISIBILITIES.includes(o.visibility)) throw new UsageError(`--visibility must be one of ${VISIBILITIES.join(', ')}`);
        const images = o.toGlance ? bridgeClient(ctx) : ctx.importer();
        const spin = spinner(`importing ${source}`);
        try {
          let img = await images.importImage(source.startsWith('docker://') ? source : `docker://${source}`, {
            ...(o.name ? { name: o.name } : {}),
            onProgress: (p) => spin.update(`importing ${source}: ${p.status} ${mib(p.bytes_done)}${p.bytes_total ? ` of ${mib(p.bytes_total)}` : ''}`),
          });
          if (o.toGlance) {
            spin.update(`copying ${source} (${mib(img.size)}) into Glance`);
            img = await images.exportImage(img.id, { visibility: o.visibility as GlanceImage['visibility'], ...(o.name ? { name: o.name } : {}) });
          }
          spin.stop();
          printObject(img as unknown as Record<string, unknown>, ctx.format);
        } catch (err) {
          spin.stop();
          throw err;
        }
      }),
    );

  image
    .command('list')
    .description('images')
    .option('--long', 'more columns: visibility, formats, owner, created and updated times')
    .action((o: { long?: boolean }) =>
      run(async (ctx) => {
        const images = await ctx.images().listImages();
        const columns = ['id', 'name', 'status', 'size', 'docker_digest'];
        if (o.long) columns.push('visibility', 'container_format', 'disk_format', 'owner', 'docker_image', 'created_at', 'updated_at');
        printList(columns, images as unknown as Record<string, unknown>[], ctx.format);
      }),
    );

  image
    .command('show <image>')
    .description('one image, by name or id')
    .action((ref: string) =>
      run(async (ctx) => {
        printObject((await findImage(ctx.images(), ref)) as unknown as Record<string, unknown>, ctx.format);
      }),
    );

  image
    .command('delete <image...>')
    .description('delete images by name or id; each is reported, exit 1 if any failed')
    .action((refs: string[]) =>
      run(async (ctx) => {
        const images = ctx.images();
        const deleted = await forEach(refs, async (ref) => {
          const img = await findImage(images, ref);
          await images.deleteImage(img.id);
          if (ctx.format === 'table') process.stdout.write(`deleted ${img.id}\n`);
          return { id: img.id, name: img.name, deleted: true };
        });
        if (ctx.format !== 'table') {
          if (refs.length === 1 && deleted.length === 1) printObject(deleted[0]!, ctx.format);
          else printList(['id', 'name', 'deleted'], deleted, ctx.format);
        }
      }),
    );
}

/** An image by id, or by a name only one image has. */
async function findImage(images: ImageService, ref: string): Promise<GlanceImage> {
  if (isUuid(ref as unknown)) {
    const img = await images.getImage(ref);
    if (!img) throw new UsageError(`no image with id ${ref}`);
    return img;
  }
  const named = await images.listImages({ name: ref });
  if (named.length > 1) throw new UsageError(`${named.length} images are named ${JSON.stringify(ref)}: use an id`);
  if (!named.length) throw new UsageError(`no image with a name or id of ${JSON.stringify(ref)}`);
  return named[0]!;
}
