import { strict as assert } from 'node:assert';
import { parseFlavors } from '../../../conf/flavors.js';
import { ConfigError, loadConfig } from '../../../conf/load.js';

describe('[DEFAULT] flavors', () => {
  it('reads NAME:VCPUS:RAM_MB[:DISK_GB], the disk 1 GiB when left out', () => {
    assert.deepEqual(parseFlavors(['m1.tiny:1:512', 'm1.small:2:2048:20']), {
      flavors: [
        { name: 'm1.tiny', vcpus: 1, memory_mb: 512, root_gb: 1 },
        { name: 'm1.small', vcpus: 2, memory_mb: 2048, root_gb: 20 },
      ],
      problems: [],
    });
  });

  it('names each malformed, zero-sized or repeated entry', () => {
    const { flavors, problems } = parseFlavors(['m1.tiny:1:512', 'tiny', 'big:1:0', 'm1.tiny:2:1024', 'x:1:2:3:4', '-a:1:1']);
    assert.deepEqual(
      flavors.map((f) => f.name),
      ['m1.tiny'],
    );
    assert.deepEqual(problems, [
      '[DEFAULT] flavors: "tiny" is not NAME:VCPUS:RAM_MB[:DISK_GB]',
      '[DEFAULT] flavors: "big:1:0" has a size of 0',
      '[DEFAULT] flavors: m1.tiny is named twice',
      '[DEFAULT] flavors: "x:1:2:3:4" is not NAME:VCPUS:RAM_MB[:DISK_GB]',
      '[DEFAULT] flavors: "-a:1:1" is not NAME:VCPUS:RAM_MB[:DISK_GB]',
    ]);
  });

  it('is checked when the configuration loads (berth conf check)', () => {
    assert.doesNotThrow(() => loadConfig({ env: {}, overrides: { DEFAULT: { flavors: ['m1.tiny:1:512:1'] } } }));
    assert.throws(
      () => loadConfig({ env: {}, overrides: { DEFAULT: { flavors: ['m1.tiny:1:512:1', 'm1.tiny:1:0'] } } }),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.includes('"m1.tiny:1:0" has a size of 0')),
    );
  });
});
