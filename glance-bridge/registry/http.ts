import { BerthError } from '../../common/errors.js';
import { readBody } from '../../common/http-client.js';
import { imageError, type ImageErrorCode } from '../errors.js';
import { authorizationFor, parseChallenge, type Credentials } from './auth.js';
import { MANIFEST_ACCEPT } from './manifest.js';
import { DOCKER_HUB } from './reference.js';
import { describeRegistryError, getFollowingRedirects, type RegistryResponse } from './transport.js';
import type { FetchedBlob, FetchedManifest, RegistryClient, RepositoryRef } from './types.js';

export interface HttpRegistryOptions {
  /** `HOST[:PORT]` entries spoken to over plain HTTP; every other registry over HTTPS. */
  insecureHosts: string[];
  credentials?: Credentials | null;
  timeoutMs: number;
  maxManifestBytes: number;
  maxBlobBytes: number;
}

/** RegistryClient over the Registry HTTP API v2, with the Docker token flow. */
export class HttpRegistryClient implements RegistryClient {
  /** Authorization header per registry and repository: tokens are scoped to one repository. */
  private readonly auth = new Map<string, string>();

  constructor(private readonly opts: HttpRegistryOptions) {}

  private baseUrl(registry: string): URL {
    const host = registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
    const scheme = this.opts.insecureHosts.includes(registry) ? 'http' : 'https';
    return new URL(`${scheme}://${host}/`);
  }

  async ping(registry: string): Promise<void> {
    const res = await getFollowingRedirects(new URL('/v2/', this.baseUrl(registry)), { timeoutMs: this.opts.timeoutMs });
    res.body.resume();
    const speaksV2 = res.status === 200 || (res.status === 401 && res.headers['www-authenticate'] !== undefined);
    if (!speaksV2) {
      throw imageError('REGISTRY_UNREACHABLE', `${registry} does not answer as a Registry v2 endpoint (GET /v2/ gave HTTP ${res.status})`, { registry, status: res.status });
    }
  }

  async fetchManifest(repo: RepositoryRef, reference: string): Promise<FetchedManifest> {
    const path = `/v2/${repo.repository}/manifests/${reference}`;
    const res = await this.get(repo, path, { accept: MANIFEST_ACCEPT.join(', ') }, 'MANIFEST_NOT_FOUND');
    const declared = Number(res.headers['content-length'] ?? '0');
    const tooLarge = () => imageError('MANIFEST_TOO_LARGE', `manifest ${reference} of ${repo.repository} is over ${this.opts.maxManifestBytes} bytes`, { limit: this.opts.maxManifestBytes });
    if (declared > this.opts.maxManifestBytes) { res.body.destroy(); throw tooLarge(); }
    const bytes = await readBody(res.body, this.opts.maxManifestBytes).catch((err: unknown) => {
      throw err instanceof BerthError && err.code === 'RESPONSE_TOO_LARGE' ? tooLarge() : err;
    });
    const digestHeader = res.headers['docker-content-digest'];
    return {
      bytes,
      contentType: String(res.headers['content-type'] ?? ''),
      ...(typeof digestHeader === 'string' ? { headerDigest: digestHeader } : {}),
    };
  }

  async fetchBlob(repo: RepositoryRef, digest: string): Promise<FetchedBlob> {
    const res = await this.get(repo, `/v2/${repo.repository}/blobs/${digest}`, {}, 'BLOB_NOT_FOUND');
    const length = res.headers['content-length'] === undefined ? null : Number(res.headers['content-length']);
    if (length !== null && length > this.opts.maxBlobBytes) {
      res.body.destroy();
      throw imageError('BLOB_TOO_LARGE', `blob ${digest} is ${length} bytes, over the ${this.opts.maxBlobBytes} byte limit`, { digest, limit: this.opts.maxBlobBytes });
    }
    return { stream: res.body, size: length };
  }

  /** A GET that answers the auth challenge once, then maps failures to the bridge's codes. */
  private async get(repo: RepositoryRef, path: string, headers: Record<string, string>, notFound: ImageErrorCode): Promise<RegistryResponse> {
    const key = `${repo.registry}/${repo.repository}`;
    const url = new URL(path, this.baseUrl(repo.registry));
    const send = (authorization?: string) => getFollowingRedirects(url, { headers: { ...headers, ...(authorization ? { authorization } : {}) }, timeoutMs: this.opts.timeoutMs });
    let res = await send(this.auth.get(key));
    if (res.status === 401) {
      res.body.resume();
      const challenge = parseChallenge(String(res.headers['www-authenticate'] ?? ''));
      if (!challenge) throw imageError('REGISTRY_AUTH_FAILED', `${repo.registry} asked for authentication without a usable challenge`, { registry: repo.registry });
      const authorization = await authorizationFor(challenge, `repository:${repo.repository}:pull`, this.opts.credentials ?? null, this.opts.timeoutMs);
      this.auth.set(key, authorization);
      res = await send(authorization);
    }
    if (res.status === 200) return res;
    const reason = await describeRegistryError(res);
    const details = { registry: repo.registry, repository: repo.repository, status: res.status };
    if (res.status === 401 || res.status === 403) {
      this.auth.delete(key);
      throw imageError('REGISTRY_AUTH_FAILED', `${repo.registry} refused access to ${repo.repository}: ${reason}`, details);
    }
    if (res.status === 404) throw imageError(notFound, `${repo.registry}/${repo.repository}: ${path.split('/').pop()} not found (${reason})`, details);
    if (res.status === 429 || res.status >= 500) throw imageError('REGISTRY_ERROR', `${repo.registry} failed GET ${path}: ${reason}`, details);
    throw imageError('REGISTRY_ERROR', `${repo.registry} answered GET ${path} with ${reason}`, details);
  }
}
