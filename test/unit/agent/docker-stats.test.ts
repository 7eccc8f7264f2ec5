import assert from 'node:assert/strict';
import { toContainerStats } from '../../../agent/runtime/docker-stats.js';

describe('Docker stats → ContainerStats', () => {
  it('computes CPU percent over the two samples, memory without page cache, and network totals', () => {
    const s = toContainerStats({
      cpu_stats: { cpu_usage: { total_usage: 3_000_000_000 }, system_cpu_usage: 120_000_000_000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 2_500_000_000 }, system_cpu_usage: 118_000_000_000 },
      memory_stats: { usage: 10_000_000, limit: 67_108_864, stats: { total_inactive_file: 4_000_000 } },
      pids_stats: { current: 3 },
      networks: { eth0: { rx_bytes: 100, tx_bytes: 50, rx_packets: 2, tx_packets: 1 }, eth1: { rx_bytes: 1, tx_bytes: 2, rx_packets: 3, tx_packets: 4 } },
    });
    assert.deepEqual(s, {
      cpu: { total_usage_ns: 3_000_000_000, percent: 50, online_cpus: 2 },
      memory: { usage_bytes: 6_000_000, limit_bytes: 67_108_864 },
      network: { rx_bytes: 101, tx_bytes: 52, rx_packets: 5, tx_packets: 5 },
      pids: 3,
    });
  });

  it('has no CPU percent without a previous sample (a stopped container) and reads cgroup v2 cache', () => {
    const s = toContainerStats({ cpu_stats: { cpu_usage: { total_usage: 0 } }, precpu_stats: {}, memory_stats: { usage: 5, stats: { inactive_file: 10 } } });
    assert.equal(s.cpu.percent, null);
    assert.equal(s.memory.usage_bytes, 0);
    assert.equal(s.memory.limit_bytes, null);
    assert.equal(s.pids, null);
  });
});
