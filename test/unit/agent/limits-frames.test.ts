import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { flavorLimits } from '../../../agent/runtime/limits.js';
import { encodeLogFrame, readLogFrames } from '../../../agent/runtime/log-frames.js';
import { BerthError } from '../../../common/errors.js';

const flavor = (extra_specs: Record<string, string> = {}) => ({ vcpus: 2, memory_mb: 512, root_gb: 1, swap: 256, extra_specs });

describe('flavorLimits', () => {
  it('derives memory, swap, CPU and pid limits from the flavor', () => {
    assert.deepEqual(flavorLimits(flavor()), {
      Memory: 512 * 1048576,
      MemorySwap: 768 * 1048576,
      CpuShares: 2048,
      PidsLimit: 1024,
      NanoCpus: 2e9,
    });
  });

  it('honours nova quota extra specs, replacing NanoCpus by quota and period', () => {
    const l = flavorLimits(flavor({ 'quota:cpu_quota': '50000', 'quota:cpu_period': '100000', 'quota:cpu_shares': '512', 'quota:pids_limit': '64' }));
    assert.equal(l.CpuQuota, 50000);
    assert.equal(l.CpuPeriod, 100000);
    assert.equal(l.CpuShares, 512);
    assert.equal(l.PidsLimit, 64);
    assert.equal(l.NanoCpus, undefined);
  });

  it('defaults the quota to the vcpus when only the period is given', () => {
    const l = flavorLimits(flavor({ 'quota:cpu_period': '20000' }));
    assert.equal(l.CpuQuota, 40000);
  });

  for (const bad of ['-1', 'abc', '1e3', '', '0']) {
    it(`rejects quota:pids_limit=${JSON.stringify(bad)} as INVALID_INPUT`, () => {
      assert.throws(
        () => flavorLimits(flavor({ 'quota:pids_limit': bad })),
        (e: unknown) => e instanceof BerthError && e.code === 'INVALID_INPUT' && /pids_limit/.test(e.message),
      );
    });
  }
});

describe('readLogFrames', () => {
  it('demultiplexes frames split across chunks', async () => {
    const all = Buffer.concat([encodeLogFrame(1, 'hello '), encodeLogFrame(2, 'err\n'), encodeLogFrame(1, 'world\n')]);
    const chunks = [all.subarray(0, 3), all.subarray(3, 11), all.subarray(11, 20), all.subarray(20)];
    assert.equal(await readLogFrames(Readable.from(chunks), 1024), 'hello err\nworld\n');
  });

  it('keeps only the newest bytes', async () => {
    const frames = Array.from({ length: 100 }, (_, i) => encodeLogFrame(1, `line ${i}\n`));
    const out = await readLogFrames(Readable.from(frames), 16);
    assert.equal(out, 'line 98\nline 99\n');
  });
});
