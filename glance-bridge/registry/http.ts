import type { Agent } from 'node:http';
import { BerthError } from '../../common/errors.js';
import { pipeline, Transform, type Readable } from 'node:stream';
import { readBody } from '../../common/http-client.js';
import { imageError, type ImageErrorCode } from '../errors.js';
import { registryKey, type Credentials, type CredentialTable } from '../../common/registry-credentials.js';
import { authorizationFor, parseChallenge } from './auth.js';
import { DestinationGuard, type Resolver } from './destination.js';
import { MANIFEST_ACCEPT } from './manifest.js';
import { DOCKER_HUB } from './reference.js';
import { ResumingBody, withRetries, type RetryPolicy } from './retry.js';
import { describeRegistryError, getFollowingRedirects, type RegistryResponse, type SendOptions } from './transport.js';
import type { FetchedBlob, FetchedManifest, RegistryClient, RepositoryRef } from './types.js';

export interface HttpRegistryOptions {
  /** `HOST[:PORT]` entries spoken to over plain HTTP; every other registry over HTTPS. */
  insecureHosts: string[];
  /** Credentials per registry (`HOST[:PORT]` as in references): each set is sent to its registry only. */
  credentials?: CredentialTable | null;
  /**
   * Internal destinations that may be connected to anyway ([registry] allowed_internal): CIDRs,
   * or HOST[:PORT]. Every other loopback, link-local, private or reserved address is refused.
   */
  allowedInternal?: readonly string[];
  /** How host names are resolved (tests replace it; the default is the system's resolver). */
  resolver?: Resolver;
  /**
   * One connection pool for both schemes instead of the guard's own (tests hand in an in-memory
   * one). Host names are checked only where its `createConnection` uses the `lookup` it is given.
   */
  agent?: Agent;
  timeoutMs: number;
  maxManifestBytes: number;
  maxBlobBytes: number;
  /** Retries of transient failures, and resumes of broken blob downloads (default: 5, from 0.5 s up to 30 s). */
  retry?: RetryPolicy;
}

/** What [registry] retries and retry_delay_ms default to, and the cap on any one wait. */
export const DEFAULT_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

/** RegistryClient over the Registry HTTP API v2, with the Docker token flow. */
export class HttpRegistryClient implements RegistryClient {
  /** Authorization header per registry and repository: tokens are scoped to one repository. */
  private readonly auth = new Map<string, string>();
  private readonly guard: DestinationGuard;

  constructor(private readonly opts: HttpRegistryOptions) {
    this.guard = new DestinationGuard(opts.allowedInternal ?? [], opts.resolver, opts.agent);
  }

  private get send(): Omit<SendOptions, 'headers'> {
    return { timeoutMs: this.opts.timeoutMs, guard: this.guard, insecureHosts: this.opts.insecureHosts };
  }

  private credentialsFor(registry: string): Credentials | null {
    return this.opts.credentials?.get(registryKey(registry)) ?? null;
  }

  private get retry(): RetryPolicy {
    return this.opts.retry ?? DEFAULT_RETRY;
  }

  private baseUrl(registry: string): URL {
    const host = registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
    const scheme = this.opts.insecureHosts.includes(registry) ? 'http' : 'https';
    return new URL(`${scheme}://${host}/`);
  }

  async ping(registry: string): Promise<void> {
    const res = await withRetries(this.retry, async () => {
      const answer = await getFollowingRedirects(new URL('/v2/', this.baseUrl(registry)), this.send);
      if (answer.status === 429 || answer.status >= 500) {
        answer.body.resume();
        throw imageError('REGISTRY_ERROR', `${registry} answered GET /v2/ with HTTP ${answer.status}`, {
          registry,
          status: answer.status,
          ...retryAfterOf(answer),
        });
      }
      return answer;
    });
    res.body.resume();
    const speaksV2 = res.status === 200 || (res.status === 401 && res.headers['www-authenticate'] !== undefined);
    if (!speaksV2) {
      throw imageError('REGISTRY_UNREACHABLE', `${registry} does not answer as a Registry v2 endpoint (GET /v2/ gave HTTP ${res.status})`, {
        registry,
        status: res.status,
      });
    }
  }

  async fetchManifest(repo: RepositoryRef, reference: string): Promise<FetchedManifest> {
    return withRetries(this.retry, () => this.fetchManifestOnce(repo, reference));
  }

  private async fetchManifestOnce(repo: RepositoryRef, reference: string): Promise<FetchedManifest> {
    const path = `/v2/${repo.repository}/manifests/${reference}`;
    const res = await this.get(repo, path, { accept: MANIFEST_ACCEPT.join(', ') }, 'MANIFEST_NOT_FOUND');
    const declared = Number(res.headers['content-length'] ?? '0');
    const tooLarge = () =>
      imageError('MANIFEST_TOO_LARGE', `manifest ${reference} of ${repo.repository} is over ${this.opts.maxManifestBytes} bytes`, {
        limit: this.opts.maxManifestBytes,
      });
    if (declared > this.opts.maxManifestBytes) {
      res.body.destroy();
      throw tooLarge();
    }
    const bytes = await readBody(res.body, this.opts.maxManifestBytes).catch((err: unknown) => {
      if (err instanceof BerthError && err.code === 'RESPONSE_TOO_LARGE') throw tooLarge();
      throw err instanceof BerthError
        ? err
        : imageError(
            'REGISTRY_UNREACHABLE',
            `${repo.registry} broke off sending manifest ${reference}: ${(err as Error).message}`,
            { registry: repo.registry },
            err,
          );
    });
    const digestHeader = res.headers['docker-content-digest'];
    return {
      bytes,
      contentType: String(res.headers['content-type'] ?? ''),
      ...(typeof digestHeader === 'string' ? { headerDigest: digestHeader } : {}),
    };
  }

  async fetchBlob(repo: RepositoryRef, digest: string): Promise<FetchedBlob> {
    const path = `/v2/${repo.repository}/blobs/${digest}`;
    const res = await withRetries(this.retry, () => this.get(repo, path, {}, 'BLOB_NOT_FOUND'));
    const length = res.headers['content-length'] === undefined ? null : Number(res.headers['content-length']);
    if (length !== null && length > this.opts.maxBlobBytes) {
      res.body.destroy();
      throw imageError('BLOB_TOO_LARGE', `blob ${digest} is ${length} bytes, over the ${this.opts.maxBlobBytes} byte limit`, {
        digest,
        limit: this.opts.maxBlobBytes,
      });
    }
    // After a fault, the rest: 206 from where it broke off, or (a registry ignoring Range) the
    // whole blob again, skipped to there. ResumingBody retries a failed reopen itself.
    const reopen = async (offset: number): Promise<Readable> => {
      const again = await this.get(repo, path, { range: `bytes=${offset}-` }, 'BLOB_NOT_FOUND', [200, 206]);
      if (again.status === 200) return pipeline(again.body, skipBytes(offset), () => undefined);
      const range = String(again.headers['content-range'] ?? '');
      if (Number(/^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(range)?.[1] ?? NaN) !== offset) {
        again.body.destroy();
        throw imageError(
          'REGISTRY_ERROR',
          `${repo.registry} answered a request for blob ${digest} from byte ${offset} with Content-Range ${JSON.stringify(range)}`,
          { registry: repo.registry, digest, offset },
        );
      }
      return again.body;
    };
    return { stream: new ResumingBody(res.body, reopen, this.retry, `the download of blob ${digest} from ${repo.registry}`), size: length };
  }

  /** A GET that answers the auth challenge once, then maps failures to the bridge's codes. */
  private async get(
    repo: RepositoryRef,
    path: string,
    headers: Record<string, string>,
    notFound: ImageErrorCode,
    ok: number[] = [200],
  ): Promise<RegistryResponse> {
    const key = `${repo.registry}/${repo.repository}`;
    const url = new URL(path, this.baseUrl(repo.registry));
    const send = (authorization?: string) => getFollowingRedirects(url, { ...this.send, headers: { ...headers, ...(authorization ? { authorization } : {}) } });
    let res = await send(this.auth.get(key));
    if (res.status === 401) {
      res.body.resume();
      const challenge = parseChallenge(String(res.headers['www-authenticate'] ?? ''));
      if (!challenge)
        throw imageError('REGISTRY_AUTH_FAILED', `${repo.registry} asked for authentication without a usable challenge`, { registry: repo.registry });
      // A failing token service is retried with the request as a whole, by its caller.
      const authorization = await authorizationFor(challenge, `repository:${repo.repository}:pull`, {
        registry: this.baseUrl(repo.registry),
        creds: this.credentialsFor(repo.registry),
        insecure: this.opts.insecureHosts.includes(repo.registry),
        send: this.send,
      });
      this.auth.set(key, authorization);
      res = await send(authorization);
    }
    if (ok.includes(res.status)) return res;
    // The registry's own error text helps the caller; a redirect target's is not repeated.
    const reason = await describeRegistryError(res, res.url.origin === url.origin);
    const details = { registry: repo.registry, repository: repo.repository, status: res.status, ...retryAfterOf(res) };
    if (res.status === 401 || res.status === 403) {
      this.auth.delete(key);
      throw imageError('REGISTRY_AUTH_FAILED', `${repo.registry} refused access to ${repo.repository}: ${reason}`, details);
    }
    if (res.status === 404) throw imageError(notFound, `${repo.registry}/${repo.repository}: ${path.split('/').pop()} not found (${reason})`, details);
    if (res.status === 429 || res.status >= 500) throw imageError('REGISTRY_ERROR', `${repo.registry} failed GET ${path}: ${reason}`, details);
    throw imageError('REGISTRY_ERROR', `${repo.registry} answered GET ${path} with ${reason}`, details);
  }
}

/** Drops the first `count` bytes of a stream; fails if it ends before them (a broken connection, to resume again). */
function skipBytes(count: number): Transform {
  let left = count;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (left >= chunk.length) {
        left -= chunk.length;
        done();
        return;
      }
      const rest = chunk.subarray(left);
      left = 0;
      done(null, rest);
    },
    flush(done) {
      done(left > 0 ? new Error(`the blob ended ${left} bytes before where the download broke off`) : null);
    },
  });
}

/** `{ retry_after: seconds }` when the answer carries a Retry-After in seconds (a date is not followed). */
function retryAfterOf(res: RegistryResponse): { retry_after?: number } {
  const value = res.headers['retry-after'];
  if (typeof value !== 'string' || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return {};
  return { retry_after: Number(value) };
}
