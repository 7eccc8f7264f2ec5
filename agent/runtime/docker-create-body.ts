import { flavorLimits, GUEST_CAPABILITIES } from './limits.js';
import { LABEL_HOST, LABEL_IMAGE, LABEL_INSTANCE, LABEL_IPV4, LABEL_MAC, LABEL_NETWORK, LABEL_PROJECT, LABEL_VIFS, type ContainerSpec } from './types.js';

export type RestartPolicy = 'no' | 'unless-stopped';

/**
 * Who connects a container to its project network: `agent` plugs a veth pair into the network's
 * bridge right after each start (fast; eth0 appears just after the guest's first process
 * started), `engine` lets dockerd attach it before the guest starts (with its embedded DNS, which
 * costs 50–95 ms per container). See docs/operator-guide.md.
 */
export type NetworkAttach = 'agent' | 'engine';

/**
 * The Engine API body of a create; exported so that benchmarks can send the same one straight to dockerd.
 * `inherited`: the image's labels under Berth's prefix, each overridden with '' unless Berth sets
 * it here (see BERTH_LABEL_PREFIX).
 */
export function createBody(
  spec: ContainerSpec,
  restartPolicy: RestartPolicy,
  host: string | undefined,
  attach: NetworkAttach,
  inherited: readonly string[] = [],
): Record<string, unknown> {
  const net = spec.network;
  const byEngine = net && attach === 'engine' ? net : undefined;
  const byAgent = net && attach === 'agent' ? net : undefined;
  // Neutron VIFs are always plugged by the agent, after each start (the engine knows no Neutron).
  const vifs = spec.vifs?.length ? spec.vifs : undefined;
  const vifAddress = vifs?.flatMap((v) => v.addresses)[0]?.address;
  // The subnets' DNS servers are the guest's resolvers (none: the engine's default for a container on no network).
  const vifDns = [...new Set(vifs?.flatMap((v) => v.dns) ?? [])];
  return {
    Image: spec.imageId,
    Hostname: spec.hostname,
    ...(byEngine ? { MacAddress: byEngine.macAddress } : {}),
    ...(byEngine ? { NetworkingConfig: { EndpointsConfig: { [byEngine.name]: { IPAMConfig: { IPv4Address: byEngine.ipv4 } } } } } : {}),
    Labels: {
      ...Object.fromEntries(inherited.map((k) => [k, ''])),
      [LABEL_INSTANCE]: spec.uuid,
      [LABEL_PROJECT]: spec.projectId,
      [LABEL_IMAGE]: spec.glanceImageId,
      ...(host ? { [LABEL_HOST]: host } : {}),
      ...(byAgent ? { [LABEL_NETWORK]: byAgent.name, [LABEL_IPV4]: byAgent.ipv4, [LABEL_MAC]: byAgent.macAddress } : {}),
      ...(vifs ? { [LABEL_VIFS]: JSON.stringify(vifs) } : {}),
    },
    // A console (agent/console/) attaches to stdin; kept open between consoles. No TTY: the
    // console log stays Docker's multiplexed stream, and a guest's output is the same with or without a console.
    Tty: false,
    OpenStdin: true,
    StdinOnce: false,
    HostConfig: {
      ...flavorLimits(spec.flavor),
      Privileged: false,
      SecurityOpt: ['no-new-privileges'],
      CapDrop: ['ALL'],
      CapAdd: [...GUEST_CAPABILITIES],
      RestartPolicy: { Name: restartPolicy },
      ...(byEngine ? { NetworkMode: byEngine.name } : {}),
      // The agent plugs eth0 in after start; the guest's own name resolves to its address.
      ...(byAgent ? { NetworkMode: 'none', ExtraHosts: [`${spec.hostname}:${byAgent.ipv4}`] } : {}),
      ...(vifs
        ? { NetworkMode: 'none', ...(vifAddress ? { ExtraHosts: [`${spec.hostname}:${vifAddress}`] } : {}), ...(vifDns.length ? { Dns: vifDns } : {}) }
        : {}),
      Mounts: [
        ...(spec.mounts ?? []).map((m) => ({ Type: 'bind', Source: m.source, Target: m.target, ReadOnly: true })),
        // A volume's source exists only while its filesystem is mounted on the host; the engine
        // refuses a bind whose source is missing, so a start never binds the host's own disk.
        ...(spec.volumes ?? []).map((v) => ({ Type: 'bind', Source: v.source, Target: v.target, ReadOnly: false })),
      ],
      // Bounded on disk; the console endpoint reads from this log.
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
  };
}
