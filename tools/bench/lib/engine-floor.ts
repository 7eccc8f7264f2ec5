import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { readBody, requestJson, requestRaw } from '../../../common/http-client.js';
import { DOCKER } from '../../lib/stack.js';
import { rawCreateStart } from './docker.js';

const API = '/v1.41';

export interface EngineFloor {
  /** POST /commit of the stopped container. */
  commit: number;
  /** GET /images/{id}/get (docker save) of the commit, into a file. */
  save: number;
  /** POST /images/load of that file, the commit and its container removed first. */
  load: number;
  /** create + start of a container from the loaded image. */
  boot: number;
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/**
 * The engine's own floor for a shelve and unshelve of a container on one host, with no Berth
 * in the way: a plain container of `imageId` gets `fill(containerId)` (not timed: the caller
 * writes its megabytes into it), is stopped, committed, the commit saved to a file, container
 * and commit removed, the file loaded back and a container booted from it. Whatever a shelve
 * that sends the container's filesystem out of the host and back must do at the least.
 */
export async function engineFloor(imageId: string, runId: string, fill: (containerId: string) => Promise<void>): Promise<EngineFloor> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-floor-'));
  const file = join(dir, 'commit.tar');
  const containers: string[] = [];
  let committed: string | null = null;
  try {
    const cid = await rawCreateStart({ imageId, memoryMb: 64, runId });
    containers.push(cid);
    await fill(cid);
    await requestJson(DOCKER, { method: 'POST', path: `${API}/containers/${cid}/stop?t=10`, accept: [304], timeoutMs: 60_000 }, 'dockerd');

    let t0 = process.hrtime.bigint();
    const c = await requestJson<{ Id: string }>(DOCKER, { method: 'POST', path: `${API}/commit?container=${cid}`, timeoutMs: 300_000 }, 'dockerd');
    committed = c.body.Id;
    const commit = ms(t0);

    t0 = process.hrtime.bigint();
    const saved = await requestRaw(DOCKER, { path: `${API}/images/${encodeURIComponent(committed)}/get`, timeoutMs: 300_000 }, 'dockerd');
    await pipeline(saved.body, createWriteStream(file));
    const save = ms(t0);

    await requestJson(DOCKER, { method: 'DELETE', path: `${API}/containers/${cid}?force=1` }, 'dockerd');
    containers.pop();
    await requestJson(DOCKER, { method: 'DELETE', path: `${API}/images/${encodeURIComponent(committed)}` }, 'dockerd');

    t0 = process.hrtime.bigint();
    const loaded = await requestRaw(
      DOCKER,
      {
        method: 'POST',
        path: `${API}/images/load?quiet=1`,
        stream: createReadStream(file),
        headers: { 'content-type': 'application/x-tar' },
        timeoutMs: 300_000,
      },
      'dockerd',
    );
    const text = (await readBody(loaded.body)).toString('utf8');
    if (loaded.status >= 300 || text.includes('"error"')) throw new Error(`docker load of the floor's commit failed: ${loaded.status} ${text.slice(-300)}`);
    const load = ms(t0);

    t0 = process.hrtime.bigint();
    containers.push(await rawCreateStart({ imageId: committed, memoryMb: 64, runId }));
    const boot = ms(t0);
    return { commit, save, load, boot };
  } finally {
    for (const id of containers)
      await requestJson(DOCKER, { method: 'DELETE', path: `${API}/containers/${id}?force=1`, accept: [404] }, 'dockerd').catch(() => undefined);
    if (committed)
      await requestJson(DOCKER, { method: 'DELETE', path: `${API}/images/${encodeURIComponent(committed)}?force=1`, accept: [404, 409] }, 'dockerd').catch(
        () => undefined,
      );
    await rm(dir, { recursive: true, force: true });
  }
}
