import type { ContainerStats } from './types.js';

/** The part of Docker's one-shot stats answer (`GET /containers/{id}/stats?stream=false`, API 1.41, cgroup v1 or v2) the agent reads. */
export interface DockerStats {
  read?: string;
  preread?: string;
  cpu_stats?: DockerCpu;
  precpu_stats?: DockerCpu;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  pids_stats?: { current?: number };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number; rx_packets?: number; tx_packets?: number }>;
}

interface DockerCpu {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] };
  system_cpu_usage?: number;
  online_cpus?: number;
}

/**
 * Docker's own arithmetic (as its CLI does it): CPU percent is the container's share of the
 * host's CPU time between the two samples Docker takes, times the CPUs online; memory usage
 * leaves out the page cache the kernel can drop at will.
 */
export function toContainerStats(s: DockerStats): ContainerStats {
  const total = s.cpu_stats?.cpu_usage?.total_usage ?? 0;
  const cpuDelta = total - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const cpus = s.cpu_stats?.online_cpus ?? s.cpu_stats?.cpu_usage?.percpu_usage?.length ?? null;
  const sampled = s.precpu_stats?.system_cpu_usage !== undefined && systemDelta > 0 && cpuDelta >= 0;
  const mem = s.memory_stats ?? {};
  const cache = mem.stats?.total_inactive_file ?? mem.stats?.inactive_file ?? 0;
  const net = { rx_bytes: 0, tx_bytes: 0, rx_packets: 0, tx_packets: 0 };
  for (const n of Object.values(s.networks ?? {})) {
    net.rx_bytes += n.rx_bytes ?? 0;
    net.tx_bytes += n.tx_bytes ?? 0;
    net.rx_packets += n.rx_packets ?? 0;
    net.tx_packets += n.tx_packets ?? 0;
  }
  return {
    cpu: { total_usage_ns: total, percent: sampled ? round2((cpuDelta / systemDelta) * (cpus ?? 1) * 100) : null, online_cpus: cpus },
    memory: { usage_bytes: Math.max(0, (mem.usage ?? 0) - cache), limit_bytes: mem.limit ?? null },
    network: net,
    pids: s.pids_stats?.current ?? null,
  };
}

const round2 = (n: number): number => Math.round(n * 100) / 100;
