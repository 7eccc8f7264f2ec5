import { agentError } from '../errors.js';
import type { DockerApi } from './docker-api.js';
import type { ContainerNames } from './container-names.js';
import { LABEL_IMAGE, LABEL_INSTANCE, LABEL_IPV4, LABEL_PROJECT, LABEL_VIFS, type ContainerInfo, type ContainerSpec, type ContainerState } from './types.js';
import type { VifSpec } from '../client/types.js';

/** The part of Docker's container inspect answer the agent reads (API 1.41). */
export interface DockerContainer {
  /** `/` and the container's name. */
  Name?: string;
  Created?: string;
  State?: { Status?: string; Running?: boolean; Pid?: number; OOMKilled?: boolean; ExitCode?: number; StartedAt?: string };
  Config?: { Labels?: Record<string, string> | null; OpenStdin?: boolean };
  NetworkSettings?: {
    SandboxKey?: string;
    IPAddress?: string;
    Networks?: Record<string, { IPAddress?: string; IPAMConfig?: { IPv4Address?: string } | null }> | null;
  };
}

/** The engine's inspect of the container of instance `uuid`; null when there is none, RUNTIME_ERROR when its name is taken by a container Berth did not label. */
export async function inspectContainer(api: DockerApi, names: ContainerNames, uuid: string): Promise<DockerContainer | null> {
  const res = await api.json<DockerContainer>({ path: `/containers/${await names.of(uuid)}/json`, accept: [404], what: 'inspect the container' });
  if (res.status === 404 || !res.body) return null;
  if (res.body.Config?.Labels?.[LABEL_INSTANCE] !== uuid) {
    throw agentError('RUNTIME_ERROR', `the container name for instance ${uuid} is taken by a container Berth did not label`, { uuid });
  }
  return res.body;
}

const STATES: ReadonlySet<string> = new Set<ContainerState>(['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead']);

export function toContainerInfo(c: DockerContainer): ContainerInfo {
  const labels = c.Config?.Labels ?? {};
  const status = c.State?.Status ?? 'dead';
  const state = (STATES.has(status) ? status : 'dead') as ContainerState;
  return {
    uuid: labels[LABEL_INSTANCE] ?? '',
    state,
    oomKilled: c.State?.OOMKilled === true,
    exitCode: state === 'exited' || state === 'dead' ? (c.State?.ExitCode ?? null) : null,
    projectId: labels[LABEL_PROJECT] ?? null,
    glanceImageId: labels[LABEL_IMAGE] ?? null,
    ipAddress: ipAddressOf(c),
    createdAt: timestamp(c.Created),
    startedAt: timestamp(c.State?.StartedAt),
    pid: c.State?.Pid || null,
  };
}

/** A stopped instance on a project network keeps reporting the fixed address it will take again. */
function ipAddressOf(c: DockerContainer): string | null {
  // Plugged in by the agent: the engine knows no address, the label has it.
  const plugged = c.Config?.Labels?.[LABEL_IPV4];
  if (plugged) return plugged;
  const vifs = vifsOf(c.Config?.Labels);
  if (vifs.length) return vifs.flatMap((v) => v.addresses)[0]?.address ?? null;
  if (c.NetworkSettings?.IPAddress) return c.NetworkSettings.IPAddress;
  const networks = Object.values(c.NetworkSettings?.Networks ?? {});
  for (const n of networks) if (n.IPAddress) return n.IPAddress;
  for (const n of networks) if (n.IPAMConfig?.IPv4Address) return n.IPAMConfig.IPv4Address;
  return null;
}

/** The Neutron VIFs a container is labelled with (LABEL_VIFS); none when absent or unreadable. */
export function vifsOf(labels: Record<string, string> | null | undefined): VifSpec[] {
  const raw = labels?.[LABEL_VIFS];
  if (!raw) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? (v as VifSpec[]) : [];
  } catch {
    return [];
  }
}

/** Docker reports "never" as the zero time 0001-01-01T00:00:00Z. */
function timestamp(t: string | undefined): string | null {
  if (!t || t.startsWith('0001-')) return null;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** A container just started by this agent, as a create reports it without reading it back. */
export function startedInfo(spec: ContainerSpec, createdAt: string): ContainerInfo {
  return {
    uuid: spec.uuid,
    state: 'running',
    oomKilled: false,
    exitCode: null,
    projectId: spec.projectId,
    glanceImageId: spec.glanceImageId,
    ipAddress: spec.network?.ipv4 ?? null,
    createdAt,
    startedAt: new Date().toISOString(),
  };
}
