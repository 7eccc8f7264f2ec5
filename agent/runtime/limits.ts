import { invalidInput } from '../../common/errors.js';
import type { FlavorSpec } from '../client/types.js';

const MiB = 1024 * 1024;
export const DEFAULT_PIDS_LIMIT = 1024;

/** The cgroup limits of a Docker HostConfig that a flavor decides. */
export interface ResourceLimits {
  Memory: number;
  MemorySwap: number;
  CpuShares: number;
  PidsLimit: number;
  NanoCpus?: number;
  CpuQuota?: number;
  CpuPeriod?: number;
}

/** Extra specs understood here, with nova's names and the range Docker accepts. */
const INT_SPECS = {
  'quota:cpu_quota': { min: 1000, max: Number.MAX_SAFE_INTEGER },
  'quota:cpu_period': { min: 1000, max: 1_000_000 },
  'quota:cpu_shares': { min: 2, max: 262_144 },
  'quota:pids_limit': { min: 1, max: 4_194_304 },
} as const;
type IntSpec = keyof typeof INT_SPECS;

function intSpec(flavor: FlavorSpec, key: IntSpec): number | undefined {
  const raw = flavor.extra_specs[key];
  if (raw === undefined) return undefined;
  const { min, max } = INT_SPECS[key];
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw invalidInput(`flavor.extra_specs["${key}"] must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`, {
      field: `flavor.extra_specs.${key}`,
    });
  }
  return n;
}

/**
 * Flavor → limits. Swap in a nova flavor is in MiB and adds to RAM, as Docker's MemorySwap is
 * RAM+swap. Docker refuses NanoCpus together with CpuQuota/CpuPeriod, so nova's explicit
 * quota:cpu_quota/cpu_period replace the vcpus-derived NanoCpus when present.
 */
export function flavorLimits(flavor: FlavorSpec): ResourceLimits {
  const memory = flavor.memory_mb * MiB;
  const limits: ResourceLimits = {
    Memory: memory,
    MemorySwap: memory + flavor.swap * MiB,
    CpuShares: intSpec(flavor, 'quota:cpu_shares') ?? 1024 * flavor.vcpus,
    PidsLimit: intSpec(flavor, 'quota:pids_limit') ?? DEFAULT_PIDS_LIMIT,
  };
  const quota = intSpec(flavor, 'quota:cpu_quota');
  const period = intSpec(flavor, 'quota:cpu_period');
  if (quota !== undefined || period !== undefined) {
    limits.CpuPeriod = period ?? 100_000;
    limits.CpuQuota = quota ?? flavor.vcpus * limits.CpuPeriod;
  } else {
    limits.NanoCpus = flavor.vcpus * 1e9;
  }
  return limits;
}

/** Capabilities a guest keeps: enough for an init to drop to users and bind low ports. */
export const GUEST_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETGID', 'SETUID', 'KILL', 'NET_BIND_SERVICE', 'AUDIT_WRITE'] as const;
