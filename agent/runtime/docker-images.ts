import { Readable } from 'node:stream';
import { readBody } from '../../common/http-client.js';
import { untaggedArchive } from '../archive-untag.js';
import { agentError, instanceNotFound } from '../errors.js';
import { refusal, type DockerApi } from './docker-api.js';
import { inspectContainer } from './docker-inspect.js';
import { BERTH_LABEL_PREFIX, type ImageInfo } from './types.js';
import type { ContainerNames } from './container-names.js';

/**
 * The images side of the Docker runtime: inspecting, loading, pulling, exporting and removing
 * images, and committing a container to one.
 */
export class DockerImages {
  private readonly imageLabels = new Map<string, string[]>();

  /** `loadTimeoutMs`: longest wait for a load or pull (10 minutes by default). */
  constructor(
    private readonly api: DockerApi,
    private readonly names: ContainerNames,
    private readonly loadTimeoutMs?: number,
  ) {}

  async hasImage(imageId: string): Promise<boolean> {
    const res = await this.api.json<{ Id?: string }>({ path: `/images/${encodeURIComponent(imageId)}/json`, accept: [404], what: 'inspect an image' });
    return res.status === 200 && res.body?.Id === imageId;
  }

  async inspectImage(imageId: string): Promise<ImageInfo | null> {
    const res = await this.api.json<{ Id?: string; Size?: number; RootFS?: { Layers?: string[] } }>({
      path: `/images/${encodeURIComponent(imageId)}/json`,
      accept: [404],
      what: 'inspect an image',
    });
    if (res.status !== 200 || res.body?.Id !== imageId) return null;
    const layers = res.body.RootFS?.Layers;
    return { imageId, sizeBytes: res.body.Size ?? 0, ...(Array.isArray(layers) ? { layers } : {}) };
  }

  /**
   * Loads an image archive with every name in it removed first (untaggedArchive): whatever store
   * it came from, a load adds an image under its id and never moves a tag on this host.
   */
  async loadImage(archive: NodeJS.ReadableStream): Promise<string[]> {
    const download = archive instanceof Readable ? archive : new Readable().wrap(archive);
    let sourceError: unknown;
    download.once('error', (err) => {
      sourceError = err;
    });
    const source = untaggedArchive(download);
    let refusedArchive: unknown;
    source.once('error', (err) => {
      if (sourceError === undefined) refusedArchive = err;
    });
    let text: string;
    let status: number;
    try {
      const res = await this.api.raw({
        method: 'POST',
        path: '/images/load',
        query: { quiet: 1 },
        stream: source,
        headers: { 'content-type': 'application/x-tar' },
        timeoutMs: this.loadTimeoutMs ?? 600_000,
        what: 'load an image',
      });
      status = res.status;
      text = (await readBody(res.body, 16 * 1024 * 1024)).toString('utf8');
    } catch (err) {
      if (sourceError !== undefined) throw agentError('IMAGE_FETCH_FAILED', 'image download broke off while loading it into the runtime', {}, sourceError);
      if (refusedArchive !== undefined) throw refusedArchive;
      throw err;
    }
    // The engine may have answered before the rewrite found what it refuses; what it loaded is
    // then caught by the caller's image id check, and the refusal is the error to report.
    if (refusedArchive !== undefined) throw refusedArchive;
    const problem = streamProblem(status, text);
    if (problem !== undefined) throw agentError('IMAGE_FETCH_FAILED', `container runtime could not load the image archive: ${problem}`);
    return loadedIds(text);
  }

  async pullImage(reference: string): Promise<string> {
    const at = reference.lastIndexOf('@');
    const colon = reference.lastIndexOf(':');
    // fromImage takes the repository, tag the tag or digest; a colon before the last slash is a port.
    const [repository, tag] =
      at > 0
        ? [reference.slice(0, at), reference.slice(at + 1)]
        : colon > reference.lastIndexOf('/')
          ? [reference.slice(0, colon), reference.slice(colon + 1)]
          : [reference, 'latest'];
    const res = await this.api.raw({
      method: 'POST',
      path: '/images/create',
      query: { fromImage: repository, tag },
      timeoutMs: this.loadTimeoutMs ?? 600_000,
      what: 'pull an image',
    });
    // The answer is a progress stream; a failure after the headers arrives as a message with `error`.
    const text = (await readBody(res.body, 16 * 1024 * 1024)).toString('utf8');
    const problem = streamProblem(res.status, text);
    if (problem !== undefined) throw agentError('IMAGE_FETCH_FAILED', `container runtime could not pull ${reference}: ${problem}`, { reference });
    const pulled = await this.api.json<{ Id?: string }>({
      path: `/images/${encodeURIComponent(reference)}/json`,
      accept: [404],
      what: 'inspect a pulled image',
    });
    if (pulled.status !== 200 || typeof pulled.body?.Id !== 'string')
      throw agentError('IMAGE_FETCH_FAILED', `container runtime pulled ${reference} but does not have it`, { reference });
    return pulled.body.Id;
  }

  /**
   * The labels under Berth's prefix an image would pass on to its containers; null when the image
   * is not present. An image id names fixed content, so the answer is kept.
   */
  async berthLabelsOfImage(imageId: string): Promise<string[] | null> {
    const known = this.imageLabels.get(imageId);
    if (known) return known;
    const res = await this.api.json<{ Id?: string; Config?: { Labels?: Record<string, string> | null } }>({
      path: `/images/${encodeURIComponent(imageId)}/json`,
      accept: [404],
      what: 'inspect an image',
    });
    if (res.status !== 200 || res.body?.Id !== imageId) return null;
    const keys = Object.keys(res.body.Config?.Labels ?? {}).filter((k) => k.startsWith(BERTH_LABEL_PREFIX));
    if (this.imageLabels.size >= 4096) this.imageLabels.clear();
    this.imageLabels.set(imageId, keys);
    return keys;
  }

  async commit(uuid: string): Promise<string> {
    // A commit keeps the container's labels in the image: Berth's (instance, project, network,
    // address) are blanked, so a snapshot neither tells its readers about the instance it came
    // from nor carries them to the containers made from it.
    const c = await inspectContainer(this.api, this.names, uuid);
    if (!c) throw instanceNotFound(uuid);
    const berth = Object.keys(c.Config?.Labels ?? {}).filter((k) => k.startsWith(BERTH_LABEL_PREFIX) && /^[A-Za-z0-9._-]+$/.test(k));
    const res = await this.api.json<{ Id?: string }>({
      method: 'POST',
      path: '/commit',
      query: { container: await this.names.of(uuid), pause: 'false', ...(berth.length ? { changes: `LABEL ${berth.map((k) => `${k}=""`).join(' ')}` } : {}) },
      accept: [404],
      timeoutMs: 600_000,
      what: 'commit the container',
    });
    if (res.status === 404) throw instanceNotFound(uuid);
    if (typeof res.body?.Id !== 'string') throw agentError('RUNTIME_ERROR', `container runtime gave no image id for the commit of instance ${uuid}`);
    return res.body.Id;
  }

  async exportImage(imageId: string): Promise<NodeJS.ReadableStream> {
    // Docker answers a missing image here with a 500, so ask first.
    if (!(await this.hasImage(imageId))) throw agentError('IMAGE_NOT_FOUND', 'image to export is not present in the container runtime');
    const res = await this.api.raw({ path: `/images/${encodeURIComponent(imageId)}/get`, timeoutMs: 600_000, what: 'export an image' });
    if (res.status === 404) {
      res.body.resume();
      throw agentError('IMAGE_NOT_FOUND', 'image to export is not present in the container runtime');
    }
    if (res.status >= 300) throw refusal('export an image', res.status, (await readBody(res.body, 65536)).toString('utf8'));
    return res.body;
  }

  async removeImage(imageId: string): Promise<void> {
    await this.api.json<unknown>({ method: 'DELETE', path: `/images/${encodeURIComponent(imageId)}`, accept: [404, 409], what: 'remove an image' });
  }
}

function messageOf(text: string): string | undefined {
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return text.trim() ? text.trim().slice(0, 300) : undefined;
  }
}

/**
 * The image ids a load reports: an untagged image is reported as `Loaded image ID: sha256:…`
 * (moby image/tar/load.go), one message per image.
 */
function loadedIds(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    let msg: { stream?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      continue;
    }
    const m = typeof msg.stream === 'string' ? /^Loaded image ID: (sha256:[0-9a-f]{64})\s*$/.exec(msg.stream) : null;
    if (m) out.push(m[1]!);
  }
  return out;
}

/**
 * What went wrong in a load or pull: an error status with its message, or, since those answers
 * are streams of JSON messages sent after a 200, a message carrying `error`.
 */
function streamProblem(status: number, text: string): string | undefined {
  if (status >= 300) return messageOf(text) ?? `HTTP ${status}`;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let msg: { error?: unknown; errorDetail?: { message?: unknown } };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      continue;
    }
    if (msg.error !== undefined || msg.errorDetail !== undefined) return String(msg.errorDetail?.message ?? msg.error);
  }
  return undefined;
}
