import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeFileOps, replaceFileDurably, type DurableFileOps } from '../../../common/fs.js';
import { silentLogger } from '../../../common/log.js';
import { VolumeRecords, type VolumeRecord } from '../../../agent/volumes/records.js';

/** The real file operations, each call noted in order (`write`, `fsync`, `rename`) with its paths. */
function recordingOps(): { ops: DurableFileOps; calls: string[] } {
  const calls: string[] = [];
  const ops: DurableFileOps = {
    writeFile: async (path, data, opts) => {
      calls.push(`write ${path}`);
      await nodeFileOps.writeFile(path, data, opts);
    },
    fsync: async (path) => {
      calls.push(`fsync ${path}`);
      await nodeFileOps.fsync(path);
    },
    rename: async (from, to) => {
      calls.push(`rename ${from} ${to}`);
      await nodeFileOps.rename(from, to);
    },
  };
  return { ops, calls };
}

describe('durable record writes: write, fsync the file, rename, fsync the folder', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-durable-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('replaceFileDurably makes the four steps in that order and leaves only the new file', async () => {
    const { ops, calls } = recordingOps();
    const file = join(dir, 'x.json');
    await replaceFileDurably(file, '{"a":1}', 0o600, ops);
    assert.deepEqual(calls, [`write ${file}.tmp`, `fsync ${file}.tmp`, `rename ${file}.tmp ${file}`, `fsync ${dir}`]);
    assert.equal(await readFile(file, 'utf8'), '{"a":1}');
  });

  it("a volume's record is fsynced before its rename and its folder after; a removal fsyncs the folder", async () => {
    const { ops, calls } = recordingOps();
    const root = join(dir, 'records');
    const records = VolumeRecords.open(root, silentLogger(), ops);
    const rec: VolumeRecord = { id: randomUUID(), name: 'data', project_id: 'p', size_gb: 1, created_at: new Date().toISOString(), attachment: null };
    await records.save(rec);
    const file = join(root, `${rec.id}.json`);
    assert.deepEqual(calls, [`write ${file}.tmp`, `fsync ${file}.tmp`, `rename ${file}.tmp ${file}`, `fsync ${root}`]);
    assert.equal(VolumeRecords.open(root, silentLogger()).get(rec.id)?.name, 'data', 'read back by a restarted agent');

    calls.length = 0;
    await records.remove(rec.id);
    assert.deepEqual(calls, [`fsync ${root}`]);
    assert.equal(VolumeRecords.open(root, silentLogger()).get(rec.id), undefined);
  });
});
