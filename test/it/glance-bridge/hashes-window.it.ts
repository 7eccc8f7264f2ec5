import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { openDatabase } from '../../../common/db.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/index.js';
import { startImageService, type ImageServiceHandle } from '../../../glance-bridge/main.js';
import { STOCK_PYTHON } from '../../support/python.js';
import { waitUntil } from '../../support/waits.js';
import { BUSYBOX, REGISTRY, realRegistryClient, runGlanceClient } from './helpers.js';

const run = promisify(execFile);
const NOVA_DOWNLOAD = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'support', 'nova_image_download.py');

/**
 * The window `[image_store] active_before_hashes` opens: an imported image active while its
 * Glance hashes are not yet recorded. Stock clients must take it as Glance's own images with no
 * hash: Debian's glanceclient (`images.data`) and nova's image download (GlanceImageServiceV2)
 * fetch it whole, unverified; and a restart in the window hashes it at start. The window is made
 * by clearing the hashes in the store's database, as the window (or a stop in it) leaves them.
 */
describe('glance-bridge: an image whose hashes are not known yet, with stock glanceclient and nova', () => {
  let dir: string;
  let service: ImageServiceHandle | undefined;

  const start = async () => {
    const config = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: dir },
        image_store: { listen: '127.0.0.1:0' },
        registry: { insecure_hosts: [REGISTRY], allowed_internal: [REGISTRY] },
      },
    });
    service = await startImageService(config, { log: silentLogger(), registry: realRegistryClient() });
    return service;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-hashes-window-'));
  });
  after(async () => {
    await service?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves it to glanceclient and to nova unverified, and hashes it at the next start', async function () {
    this.timeout(180_000);
    const first = await start();
    const image = await first.importer.importImage(BUSYBOX);
    const recorded = image.checksum;
    assert.match(recorded ?? '', /^[0-9a-f]{32}$/);
    // The window, made while the service runs (its start-up recovery has run already, and
    // nothing else hashes an active image): active, hashes unknown.
    const db = openDatabase(`sqlite://${join(dir, 'images.sqlite')}`);
    await db.query('UPDATE images SET checksum = NULL, os_hash_algo = NULL, os_hash_value = NULL WHERE id = ?', { replacements: [image.id] });
    await db.close();
    const endpoint = first.url;
    const viaGlanceclient = join(dir, 'glanceclient.bin');
    const [shown, downloaded] = await runGlanceClient({
      endpoint,
      ops: [
        { op: 'show', id: image.id },
        { op: 'download', id: image.id, path: viaGlanceclient },
      ],
    });
    assert.equal(shown!.status, 'active');
    assert.equal(shown!.checksum, null);
    assert.equal(shown!.os_hash_value, null);
    assert.equal(downloaded!.error, undefined, JSON.stringify(downloaded));
    assert.equal(downloaded!.size, image.size);
    assert.equal(downloaded!.md5, recorded, 'the bytes served in the window are the image');

    const viaNova = join(dir, 'nova.bin');
    const { stdout } = await run(STOCK_PYTHON, [NOVA_DOWNLOAD, endpoint, image.id, viaNova], {
      timeout: 120_000,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PYTHONNOUSERSITE: '1', PYTHONDONTWRITEBYTECODE: '1' },
    });
    const nova = JSON.parse(stdout.trim().split('\n').at(-1)!) as { status: string; checksum: string | null; size: number; md5: string };
    assert.deepEqual(nova, { status: 'active', checksum: null, size: image.size, md5: recorded });
    assert.equal(createHash('md5').update(readFileSync(viaNova)).digest('hex'), recorded);
    await first.close();
    service = undefined;

    // Stopped in the window: the next start takes the hashing up again and records the same hashes as the import did.
    const third = await start();
    // Nothing asks for the hashes: the start-up recovery alone records them (bounded wait).
    await waitUntil(
      async () => ((await (await fetch(`${third.url}/v2/images/${image.id}`)).json()) as { checksum: string | null }).checksum,
      30_000,
      'the hashes recorded at start',
      100,
    );
    const [after] = await runGlanceClient({ endpoint: third.url, ops: [{ op: 'show', id: image.id }] });
    assert.equal(after!.checksum, recorded);
    assert.equal(after!.os_hash_value, image.os_hash_value);
  });
});
