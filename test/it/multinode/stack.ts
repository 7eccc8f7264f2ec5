import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { GlanceImage } from '../../../glance-bridge/client/types.js';
import { startImageService, type ImageServiceHandle } from '../../../glance-bridge/main.js';

export const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
export const ADMIN_URL = process.env.BERTH_TEST_POSTGRES ?? 'postgres://berth:berth@127.0.0.1:5432/berth_test';

/** The image service the nodes of a multi-node test share (state under `state`/images), holding the registry's busybox. */
export async function startSharedImages(state: string): Promise<{ images: ImageServiceHandle; image: GlanceImage }> {
  mkdirSync(join(state, 'images'));
  const images = await startImageService(
    loadConfig({
      env: {},
      overrides: { DEFAULT: { state_path: join(state, 'images') }, image_store: { listen: '127.0.0.1:0' }, registry: { allowed_internal: [REGISTRY] } },
    }),
    { log: silentLogger() },
  );
  const image = await createImageClient({ url: images.url, roles: ['admin'] }).importImage(`docker://${REGISTRY}/berth/busybox:latest`);
  return { images, image };
}

/** A fresh PostgreSQL database `name` the nodes share; drop it with the returned admin connection. */
export async function createSharedDatabase(name: string): Promise<{ admin: pg.Client; url: string }> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return { admin, url: url.toString() };
}
