import { cpus, totalmem } from 'node:os';
import { statfsSync } from 'node:fs';
import type { Flavor } from '../objects/instance.js';
import { novaError } from '../rpc/failure.js';

/**
 * The resource tracker: what this node offers (totals, reserved amounts, allocation ratios, as
 * nova's resource tracker and Placement inventories have them) and what its instances claim.
 */
export interface Inventory {
  total: number;
  reserved: number;
  allocation_ratio: number;
}
export interface HostResources {
  VCPU: Inventory;
  MEMORY_MB: Inventory;
  DISK_GB: Inventory;
}
export type Usage = { VCPU: number; MEMORY_MB: number; DISK_GB: number };

export interface ResourceOptions {
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
  reserved_host_cpus: number;
  reserved_host_memory_mb: number;
  reserved_host_disk_mb: number;
  cpu_allocation_ratio: number;
  ram_allocation_ratio: number;
  disk_allocation_ratio: number;
}

function diskGb(path: string): number {
  try {
    const s = statfsSync(path);
    return Math.floor((s.blocks * s.bsize) / 1024 ** 3);
  } catch {
    return 0;
  }
}

export function hostResources(o: ResourceOptions, statePath: string): HostResources {
  return {
    VCPU: { total: o.vcpus || cpus().length, reserved: o.reserved_host_cpus, allocation_ratio: o.cpu_allocation_ratio },
    MEMORY_MB: { total: o.memory_mb || Math.floor(totalmem() / 1048576), reserved: o.reserved_host_memory_mb, allocation_ratio: o.ram_allocation_ratio },
    DISK_GB: { total: o.disk_gb || diskGb(statePath), reserved: Math.ceil(o.reserved_host_disk_mb / 1024), allocation_ratio: o.disk_allocation_ratio },
  };
}

/** Placement's capacity formula: (total - reserved) * allocation_ratio. */
export function capacity(inv: Inventory): number {
  return Math.floor((inv.total - inv.reserved) * inv.allocation_ratio);
}

export function claimOf(f: Pick<Flavor, 'vcpus' | 'memory_mb' | 'root_gb' | 'ephemeral_gb' | 'swap'>): Usage {
  return { VCPU: f.vcpus, MEMORY_MB: f.memory_mb, DISK_GB: f.root_gb + f.ephemeral_gb + Math.ceil(f.swap / 1024) };
}

export function sumUsage(claims: Usage[]): Usage {
  return claims.reduce((a, c) => ({ VCPU: a.VCPU + c.VCPU, MEMORY_MB: a.MEMORY_MB + c.MEMORY_MB, DISK_GB: a.DISK_GB + c.DISK_GB }), {
    VCPU: 0,
    MEMORY_MB: 0,
    DISK_GB: 0,
  });
}

/** Throws nova's ComputeResourcesUnavailable naming every resource the claim would exceed. */
export function checkClaim(host: HostResources, used: Usage, claim: Usage): void {
  const short: string[] = [];
  for (const rc of ['VCPU', 'MEMORY_MB', 'DISK_GB'] as const) {
    const free = capacity(host[rc]) - used[rc];
    if (claim[rc] > free) short.push(`${rc}: requested ${claim[rc]}, free ${Math.max(0, free)} of ${capacity(host[rc])}`);
  }
  if (short.length) {
    const reason = `Insufficient compute resources: ${short.join('; ')}.`;
    throw novaError('ComputeResourcesUnavailable', 500, `${reason}`, { reason });
  }
}
