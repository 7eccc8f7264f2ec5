import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import sinon from 'sinon';
import { BerthError } from '../../../common/errors.js';
import { readBody } from '../../../common/http-client.js';
import { BlobStore, sha256Digest } from '../../../glance-bridge/store/blobs.js';
import { sha256OfFile, WorkerFileHasher, type FileHasher } from '../../../glance-bridge/store/file-digest.js';

const MiB = 1024 * 1024;
const hexOf = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof BerthError && err.code === code);
}

describe('glance-bridge BlobStore: large blobs hashed off the event loop', () => {
  let dir: string;
  const stores: BlobStore[] = [];
  const storeWith = async (hasher: FileHasher | undefined, offloadMinBytes = MiB): Promise<BlobStore> => {
    const store = new BlobStore(join(dir, 'blobs'), { offloadMinBytes, ...(hasher ? { hasher } : {}) });
    await store.init();
    stores.push(store);
    return store;
  };
  const tmpFiles = () => readdirSync(join(dir, 'blobs', 'tmp'));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-blob-offload-'));
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("checks a large blob of known size against the hasher's digest of its written temp file, and hashes small or unsized blobs inline", async () => {
    const big = randomBytes(2 * MiB);
    const small = randomBytes(1000);
    const sha256 = sinon.stub<[string], Promise<string>>().callsFake((path) => sha256OfFile(path));
    const store = await storeWith({ sha256, close: async () => undefined });

    await store.put(sha256Digest(big), Readable.from([big]), { expectedSize: big.length });
    sinon.assert.calledOnce(sha256);
    assert.equal(join(sha256.firstCall.args[0], '..'), join(dir, 'blobs', 'tmp'));
    assert.ok((await readBody(await store.open(sha256Digest(big)))).equals(big));

    await store.put(sha256Digest(small), Readable.from([small]), { expectedSize: small.length });
    await store.put(sha256Digest(Buffer.concat([big, small])), Readable.from([big, small]));
    sinon.assert.calledOnce(sha256);
  });

  it("refuses the blob when the hasher's digest differs, though the bytes match the name: its answer is the check", async () => {
    const big = randomBytes(2 * MiB);
    const store = await storeWith({ sha256: async () => '0'.repeat(64), close: async () => undefined });
    await rejectsWithCode(store.put(sha256Digest(big), Readable.from([big]), { expectedSize: big.length }), 'DIGEST_MISMATCH');
    assert.equal(await store.has(sha256Digest(big)), false);
    assert.deepEqual(tmpFiles(), []);
  });

  it('with the worker thread: stores a large blob whole, and refuses a tampered one leaving neither blob nor temp file', async () => {
    const store = await storeWith(undefined);
    const big = randomBytes(3 * MiB + 7);
    const d = sha256Digest(big);
    const tampered = Buffer.from(big);
    tampered.writeUInt8(tampered.readUInt8(MiB) ^ 1, MiB);
    await rejectsWithCode(store.put(d, Readable.from([tampered]), { expectedSize: big.length }), 'DIGEST_MISMATCH');
    assert.equal(await store.has(d), false);
    assert.deepEqual(tmpFiles(), []);
    assert.deepEqual(await store.put(d, Readable.from([big.subarray(0, MiB), big.subarray(MiB)]), { expectedSize: big.length }), {
      digest: d,
      size: big.length,
      created: true,
    });
    assert.ok((await readBody(await store.open(d))).equals(big));
  });

  it('refuses a size mismatch before hashing anything', async () => {
    const sha256 = sinon.stub<[string], Promise<string>>().rejects(new Error('not expected'));
    const store = await storeWith({ sha256, close: async () => undefined });
    const big = randomBytes(2 * MiB);
    await rejectsWithCode(store.put(sha256Digest(big), Readable.from([big]), { expectedSize: big.length + 1 }), 'BLOB_SIZE_MISMATCH');
    sinon.assert.notCalled(sha256);
    assert.deepEqual(tmpFiles(), []);
  });
});

describe('glance-bridge WorkerFileHasher', () => {
  let dir: string;
  let hasher: WorkerFileHasher;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-file-digest-'));
    hasher = new WorkerFileHasher();
  });
  afterEach(async () => {
    await hasher.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers concurrent files each with its own sha256, and an empty file too', async () => {
    const bodies = [randomBytes(3 * MiB), randomBytes(17), Buffer.alloc(0), randomBytes(MiB + 1)];
    const paths = bodies.map((b, i) => {
      const p = join(dir, `f${i}`);
      writeFileSync(p, b);
      return p;
    });
    assert.deepEqual(await Promise.all(paths.map((p) => hasher.sha256(p))), bodies.map(hexOf));
  });

  it('hashes on the event loop instead when its worker dies, and starts a new worker for the next file', async () => {
    const body = randomBytes(4 * MiB);
    const path = join(dir, 'f');
    writeFileSync(path, body);
    const pending = hasher.sha256(path);
    // Terminated before it can have answered: it is still loading its module.
    await (hasher as unknown as { worker: Worker }).worker.terminate();
    assert.equal(await pending, hexOf(body));
    assert.equal(await hasher.sha256(path), hexOf(body));
  });

  it('fails for a file that is not there, naming it', async () => {
    await assert.rejects(hasher.sha256(join(dir, 'absent')), /ENOENT.*absent/);
  });
});
