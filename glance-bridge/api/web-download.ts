import { isIP } from 'node:net';
import { describeError, invalidInput } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { hasCode, imageError } from '../errors.js';
import { IMPORT_ERROR_PROPERTY } from '../import/importer.js';
import type { DestinationGuard } from '../registry/destination.js';
import { getFollowingRedirects } from '../registry/transport.js';
import type { ImageRepository } from '../store/images.js';
import type { ImageUploader } from '../import/upload.js';
import { reserveBytes, type ProjectQuotas } from '../policy/quotas.js';

/**
 * Glance's `web-download` of an `http(s)://` URL into a queued image that is not a docker image
 * (docker images come from `docker://` references, through the importer). The fetch goes through
 * the registry imports' hardened transport: every destination, first URL and redirect hop alike,
 * is checked where it is connected to ([registry] allowed_internal), HTTPS is never downgraded, a
 * URL with credentials is refused and none are ever sent; the data is stored like an upload, so
 * `max_image_bytes` and the project's byte quota bound it.
 */
export interface WebFetchOptions {
  guard: DestinationGuard;
  /** Per connection and idle read (`[registry] request_timeout`). */
  timeoutMs: number;
  /** `[registry] insecure_hosts`: the only hosts a plain-HTTP redirect may lead to. */
  insecureHosts: readonly string[];
  /** Downloads running at once, counted apart from registry imports; none: unlimited. */
  slots?: DownloadSlots;
}

/**
 * `[image_store] max_concurrent_imports` and `…_per_project` for http(s) web-downloads: one more
 * is refused with 413 until one finishes, as a registry import would be.
 */
export class DownloadSlots {
  private readonly running = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly perProject: number,
  ) {}

  take(project: string): () => void {
    const total = [...this.running.values()].reduce((sum, n) => sum + n, 0);
    const mine = this.running.get(project) ?? 0;
    if (this.perProject && mine >= this.perProject) {
      throw imageError(
        'QUOTA_EXCEEDED',
        `Resource image_count_uploading is over limit of ${this.perProject} due to current usage ${mine} and delta 1: at most ${this.perProject} web-downloads of one project run at once ([image_store] max_concurrent_imports_per_project); retry once one has finished`,
        { project, limit: this.perProject, usage: mine, option: 'max_concurrent_imports_per_project' },
      );
    }
    if (this.max && total >= this.max) {
      throw imageError(
        'QUOTA_EXCEEDED',
        `The image service is running its limit of ${this.max} concurrent web-downloads ([image_store] max_concurrent_imports); retry once one has finished`,
        { limit: this.max, usage: total, option: 'max_concurrent_imports' },
      );
    }
    this.running.set(project, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.running.get(project) ?? 1) - 1;
      if (left > 0) this.running.set(project, left);
      else this.running.delete(project);
    };
  }
}

export interface WebDownloadDeps {
  images: ImageRepository;
  uploader: ImageUploader;
  quotas?: ProjectQuotas;
  log: Logger;
  web: WebFetchOptions;
}

/** An `http://` or `https://` URL without credentials; 400 otherwise. */
export function parseWebUri(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidInput('method.uri must be a docker:// reference or an http(s):// URL', { field: 'method.uri' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalidInput(`method.uri scheme ${url.protocol} is not supported (docker://, http://, https://)`, { field: 'method.uri' });
  if (url.username || url.password) throw invalidInput('method.uri must not carry credentials', { field: 'method.uri' });
  return url;
}

/**
 * Checks the image can take the download (queued, not docker) and starts it; the returned promise
 * settles when the image is active, or killed with `berth_import_error`.
 */
export async function startWebDownload(deps: WebDownloadDeps, id: string, url: URL): Promise<{ done: Promise<void> }> {
  const image = await deps.images.require(id);
  if (image.container_format === 'docker')
    throw invalidInput('an http(s):// web-download needs a container_format other than docker; docker images are imported from docker:// references', {
      field: 'method.uri',
    });
  if (image.status !== 'queued') {
    throw imageError('IMAGE_INVALID_STATE', `image ${id} is ${image.status}; only queued images can be imported into`, { image_id: id, status: image.status });
  }
  await precheck(deps.web.guard, url);
  const release = deps.web.slots?.take(image.owner ?? '') ?? (() => undefined);
  return { done: download(deps, id, url, image.owner ?? '').finally(release) };
}

/**
 * Glance refuses a URI that fails its filtering before answering (400); so does this: the host is
 * resolved and checked now, and again by the connection itself (which is what makes it safe: a
 * name may resolve elsewhere a moment later).
 */
async function precheck(guard: DestinationGuard, url: URL): Promise<void> {
  const refused = (reason: unknown) =>
    invalidInput(`URI for web-download does not pass filtering: ${url.origin}${url.pathname}`, {
      field: 'method.uri',
      reason: reason instanceof Error ? reason.message : String(reason),
    });
  try {
    guard.checkLiteral(url);
  } catch (err) {
    throw refused(err);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host)) return;
  await new Promise<void>((resolve, reject) => {
    guard.lookupFor(url)(host, { all: true }, (err) => (err ? reject(refused(err)) : resolve()));
  });
}

async function download(deps: WebDownloadDeps, id: string, url: URL, owner: string): Promise<void> {
  try {
    const res = await getFollowingRedirects(url, {
      guard: deps.web.guard,
      timeoutMs: deps.web.timeoutMs,
      insecureHosts: deps.web.insecureHosts,
      headers: { accept: '*/*' },
    });
    if (res.status !== 200) {
      res.body.destroy();
      // Only the status: what some other server answered is not repeated.
      throw imageError('IMAGE_IMPORT_FAILED', `${url.host} answered HTTP ${res.status}`, { image_id: id });
    }
    const declared = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : null;
    const length = declared !== null && Number.isSafeInteger(declared) && declared >= 0 ? declared : null;
    const held = await reserveBytes(deps.images, owner, deps.quotas, length ?? 0, length);
    try {
      await deps.uploader.upload(id, res.body, length, { cover: held.cover });
    } finally {
      held.release();
    }
  } catch (err) {
    deps.log.warn({ image_id: id, host: url.host, reason: describeError(err) }, 'web-download failed');
    // Only a still queued image: the uploader marks the failures it saw through, and an upload
    // that won the image meanwhile is left alone.
    await kill(deps.images, id, err);
  }
}

async function kill(images: ImageRepository, id: string, reason: unknown): Promise<void> {
  const message = reason instanceof Error && 'code' in reason ? `${String((reason as { code: unknown }).code)}: ${reason.message}` : 'download failed';
  try {
    const current = await images.require(id);
    if (current.status !== 'queued') return;
    await images.transition(id, 'killed', { properties: { ...current.properties, [IMPORT_ERROR_PROPERTY]: message } });
  } catch (err) {
    if (!hasCode(err, 'IMAGE_NOT_FOUND') && !hasCode(err, 'IMAGE_INVALID_STATE')) throw err;
  }
}
