import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keystoneSession } from '../../../common/keystone/index.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/index.js';
import { startImageService } from '../../../glance-bridge/main.js';
import { loadTestCloud, type TestCloud } from '../../support/cloud.js';

export type Side = 'glance' | 'berth';
export interface Answer {
  status: number;
  type: string;
  json: any;
  text: string;
}

/** The test cloud's Glance and an image store in keystone mode, both reached with one token. */
export interface ParityPair {
  cloud: TestCloud;
  /** A folder of the store's own, removed by close(). */
  dir: string;
  /** Each side's root URL, without a trailing slash. */
  base: Record<Side, string>;
  send(side: Side, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
}

/**
 * Starts the store as the glance service user of the test cloud (its tokens are validated by
 * that user too) with `imageStore` options added; `prepare` runs on the store's folder first.
 */
export async function startParityPair(
  imageStore: Record<string, unknown> = {},
  prepare: (dir: string) => Record<string, unknown> = () => ({}),
): Promise<ParityPair> {
  const cloud = loadTestCloud();
  const dir = mkdtempSync(join(tmpdir(), 'berth-glance-parity-'));
  const user = { auth_url: cloud.keystoneUrl, username: cloud.glance.username, password: cloud.glance.password, project_name: cloud.serviceProject };
  const config = loadConfig({
    env: {},
    overrides: {
      DEFAULT: { state_path: dir },
      image_store: { listen: '127.0.0.1:0', registry_listen: '', auth_strategy: 'keystone', ...imageStore, ...prepare(dir) },
      glance: { api_url: '', ...user },
      keystone_authtoken: user,
    },
  });
  const service = await startImageService(config, { log: silentLogger() });
  const token = await keystoneSession(config.glance).token();
  const base: Record<Side, string> = { glance: cloud.glanceUrl.replace(/\/+$/, ''), berth: service.url.replace(/\/+$/, '') };
  return {
    cloud,
    dir,
    base,
    async send(side, method, path, body, headers = {}) {
      const raw = body === undefined ? undefined : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body);
      const res = await fetch(`${base[side]}${path}`, {
        method,
        headers: {
          'x-auth-token': token,
          ...(raw !== undefined ? { 'content-type': Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json' } : {}),
          ...headers,
        },
        ...(raw !== undefined ? { body: raw } : {}),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, type: res.headers.get('content-type') ?? '', json, text };
    },
    async close() {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Keys and value types, recursively (an array: the shape of its first item). virtual_size is
 * integer or null alike: Glance measures it from the data, the store never does (image-service.md).
 */
export function shape(v: unknown, key = ''): unknown {
  if (key === 'virtual_size') return 'integer or null';
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, shape((v as Record<string, unknown>)[k], k)]),
    );
  return typeof v;
}
