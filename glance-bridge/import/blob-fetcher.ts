import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream';
import { checkAnnouncedSize, DeclaredSizeLimit } from './declared-size.js';
import { SingleFlight } from '../../common/single-flight.js';
import { imageError } from '../errors.js';
import { layerCompression, LayerScanner, type ScanLimits } from './layer-scan.js';
import type { BlobStore } from '../store/blobs.js';
import type { Descriptor, RegistryClient, RepositoryRef } from '../registry/types.js';

export interface FetchOptions {
  maxBlobBytes: number;
  /** Layers (gzip or plain tar) are scanned with these limits while they stream in. */
  scan?: ScanLimits;
  /** Bytes received, for progress; called for the fetching import only, not for sharers. */
  onBytes?: (n: number) => void;
  /**
   * Whether the importing project may use a blob already stored (or being fetched by another
   * import) without showing that its source has it; absent: always. See `prove`.
   */
  mayReuse?: (digest: string) => Promise<boolean>;
  /**
   * Who fetches (the importing project): a download under way for the same party is shared
   * without `mayReuse`, since its source is serving the very bytes to that party.
   */
  party?: string;
  /** Per-stage timeline of the import (fetch-image.ts stageLog), when debug logging is on. */
  trace?: (stage: string, fields?: Record<string, unknown>) => void;
}

/**
 * Brings blobs from a registry into the store, once per digest: a blob already stored is not
 * fetched again, and imports asking for a digest that is being fetched wait for that fetch
 * instead of starting their own (two images sharing a base layer download it once). A download
 * settles with the party that started it, so that a joiner of the same party is not asked to prove.
 */
export class BlobFetcher {
  private readonly inFlight = new SingleFlight<string | undefined>();

  constructor(
    private readonly store: BlobStore,
    private readonly registry: RegistryClient,
  ) {}

  /** Digests being fetched right now: blob GC must treat them as referenced. */
  fetching(): Set<string> {
    return new Set(this.inFlight.keys());
  }

  async ensure(repo: RepositoryRef, blob: Descriptor, opts: FetchOptions): Promise<'present' | 'fetched' | 'shared' | 'proved'> {
    const running = this.inFlight.get(blob.digest);
    if (running) return this.join(running, repo, blob, opts);
    const stored = await this.store.size(blob.digest);
    if (stored !== null) {
      // Same digest means same bytes, so a different size means the manifest is wrong.
      if (stored !== blob.size)
        throw imageError('BLOB_SIZE_MISMATCH', `manifest says blob ${blob.digest} has ${blob.size} bytes; it has ${stored}`, {
          digest: blob.digest,
          expected: blob.size,
          actual: stored,
        });
      return this.reused(repo, blob, opts, 'present');
    }
    // Checked again: another import may have started this digest while we looked at the disk.
    const raced = this.inFlight.get(blob.digest);
    if (raced) return this.join(raced, repo, blob, opts);
    await this.inFlight.run(blob.digest, async () => {
      await this.fetchInto(repo, blob, opts);
      return opts.party;
    });
    return 'fetched';
  }

  private async join(download: Promise<string | undefined>, repo: RepositoryRef, blob: Descriptor, opts: FetchOptions): Promise<'shared' | 'proved'> {
    const party = await download;
    if (party !== undefined && party === opts.party) return 'shared';
    return this.reused(repo, blob, opts, 'shared');
  }

  private async reused<T extends 'present' | 'shared'>(repo: RepositoryRef, blob: Descriptor, opts: FetchOptions, how: T): Promise<T | 'proved'> {
    if (!opts.mayReuse || (await opts.mayReuse(blob.digest))) return how;
    await this.prove(repo, blob, opts);
    return 'proved';
  }

  /**
   * Downloads a blob the store holds already and checks that it hashes to its digest, keeping
   * nothing. A digest is no secret (manifests, logs and `docker images` show them), so a manifest
   * on a registry of one's own may name the layers or config of another project's private image:
   * without this the store would give that content to whoever named it. Only a source that
   * serves the very bytes passes, as docker's registry mounts a blob across repositories only
   * for a puller of the source repository.
   */
  private async prove(repo: RepositoryRef, blob: Descriptor, opts: FetchOptions): Promise<void> {
    const { stream } = await this.registry.fetchBlob(repo, blob.digest);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > blob.size) break;
        hash.update(chunk);
        opts.onBytes?.(chunk.length);
      }
    } finally {
      stream.destroy();
    }
    if (bytes !== blob.size)
      throw imageError(
        'BLOB_SIZE_MISMATCH',
        `blob ${blob.digest} from the registry has ${bytes > blob.size ? 'more than ' : ''}${bytes} bytes, expected ${blob.size}`,
        { digest: blob.digest, expected: blob.size },
      );
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== blob.digest)
      throw imageError('DIGEST_MISMATCH', `content of blob ${blob.digest} from the registry hashes to ${actual}`, { expected: blob.digest, actual });
  }

  private async fetchInto(repo: RepositoryRef, blob: Descriptor, opts: FetchOptions): Promise<void> {
    const compression = layerCompression(blob.mediaType);
    const scanner = opts.scan && compression ? new LayerScanner(blob.digest, compression, opts.scan) : null;
    const { stream: body, size } = await this.registry.fetchBlob(repo, blob.digest);
    try {
      checkAnnouncedSize(blob.digest, blob.size, size);
    } catch (err) {
      body.destroy();
      throw err;
    }
    // Bounded by what the manifest declared, not only by the global cap: the download stops there.
    const stream = pipeline(body, new DeclaredSizeLimit(blob.digest, blob.size), () => undefined);
    try {
      await this.store.put(blob.digest, stream, {
        expectedSize: blob.size,
        maxBytes: opts.maxBlobBytes,
        ...(opts.onBytes ? { onBytes: opts.onBytes } : {}),
        ...(scanner ? { observe: (chunk: Buffer) => scanner.write(chunk) } : {}),
        verify: async () => {
          opts.trace?.('blob written', { digest: blob.digest });
          if (!scanner) return;
          await scanner.finish();
          opts.trace?.('blob scanned', { digest: blob.digest });
        },
      });
    } finally {
      scanner?.destroy();
    }
  }
}

/**
 * Runs `fn` over `items` with at most `limit` at once. After a failure no new item starts, the
 * running ones are let finish (so nothing is still writing when the caller cleans up), and the
 * first failure is thrown.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}
