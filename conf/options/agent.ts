import { str, url, int, bool, choice, list, keystoneAuth, type OptionSpec } from './spec.js';

/** The node agent, and the Glance and Docker endpoints instances are built from. */
export const agentSections = {
  agent: {
    url: url('http://127.0.0.1:9393', 'Where the driver reaches the on-host agent: http://HOST:PORT or unix:///PATH.sock.'),
    listen: str('127.0.0.1:9393', 'Where the agent listens: HOST:PORT or an absolute unix socket path.'),
    token: str(
      '',
      'Bearer token the driver presents to the agent. Empty: the agent generates one in $state_path/agent.token at start-up and the driver reads it from there.',
      { secret: true },
    ),
    request_timeout: int(120, 'Seconds the driver waits for one agent request (image fetches can be long).', 1, 3600),
    auth_strategy: choice(
      'token',
      ['token', 'keystone', 'token+keystone'] as const,
      'How the agent authenticates callers: token (the bearer token above, compared in constant time), keystone (an X-Auth-Token validated against [keystone_authtoken] whose roles include one of keystone_roles; the driver then presents a token of the [keystone_authtoken] user) or token+keystone (either is accepted).',
    ),
    keystone_roles: list(
      ['admin', 'service'],
      'With a keystone auth_strategy: roles of which a token needs at least one (the agent is an infrastructure API, not a tenant one).',
    ),
    connect_retries: int(5, 'Times the driver retries an agent request that could not connect, with back-off, before failing the operation.', 0, 100),
    max_body_bytes: int(1048576, 'Largest request body the agent accepts, in bytes.', 1024, 104857600),
    inject_ssh_keys: bool(
      false,
      "Also mount the instance's key_data read-only at /root/.ssh/authorized_keys in the container (for images with a root shell user); the keys are always in the config drive.",
    ),
    project_subnet_pool: str(
      '172.30.0.0/16',
      'IPv4 range (CIDR) the per-project bridge networks take their subnets from; subnets already used by other Docker networks are skipped.',
    ),
    project_subnet_prefix: int(24, "Prefix length of each project's subnet, carved from project_subnet_pool.", 16, 29),
    image_registry: str(
      '',
      "HOST:PORT of the image service's read-only registry endpoint ([image_store] registry_listen) as this host's dockerd reaches it. When set, images the image service imported from a registry are pulled from there, so dockerd fetches only the layers it lacks and registers each layer as it arrives; uploaded images, and any failed pull, fall back to streaming the image archive into docker load. dockerd pulls from loopback over plain HTTP; any other address needs TLS or dockerd's insecure-registries. Empty: always docker load.",
    ),
    image_cache_max_unused_seconds: int(
      0,
      'Images the agent loaded from the image store that no container uses and that were unused for this many seconds are removed from Docker. Images the agent did not load, and images any container uses, are never removed. 0 keeps every image.',
      0,
      31536000,
    ),
    guest_firewall: bool(
      true,
      "Keep guests off the host itself: at start the agent installs an iptables chain (guest_firewall_chain) that INPUT and DOCKER-USER jump to for guest addresses (project_subnet_pool), refusing their TCP connections to the host's own Berth ports (the agent's listen port, the ports of [glance] api_url, image_registry, [image_store] listen and registry_listen, and guest_blocked_ports) and all their traffic to the metadata address 169.254.169.254 (unless guest_metadata_access). Idempotent, and written again every 5 minutes; the chain stays when the agent stops. The agent does not start when iptables refuses. false: the agent installs nothing (remove an existing chain by hand).",
    ),
    guest_firewall_chain: str('BERTH-GUEST', 'Name of the iptables chain of guest_firewall (1 to 28 letters, digits, - or _).'),
    guest_blocked_ports: list(
      [],
      'Further host TCP ports guests may not connect to with guest_firewall (for example 5672 for RabbitMQ, 5432 for PostgreSQL when they listen beyond loopback).',
    ),
    guest_metadata_access: bool(
      false,
      'With guest_firewall: let guests reach 169.254.169.254 (a metadata service on or through this host). Berth itself gives guests their metadata on the config drive.',
    ),
    image_cache_cleanup_interval: int(
      600,
      'Seconds between passes of the image cache clean-up (only when image_cache_max_unused_seconds is set); POST /v1/images/cleanup runs one at once.',
      1,
      86400,
    ),
  },
  glance: {
    api_url: url('http://127.0.0.1:9292', 'Glance v2 API endpoint the agent fetches images from (the glance-bridge by default).'),
    ...keystoneAuth('of the service user the agent and driver present to Glance (needed when api_url is a real Glance with Keystone)'),
  },
  docker: {
    host_url: url('unix:///var/run/docker.sock', 'Docker Engine API endpoint: unix:///PATH or http://HOST:PORT.'),
    api_version: str('1.41', 'Docker Engine API version to speak (1.41 is Docker 20.10).'),
    stop_timeout: int(10, 'Seconds a container is given to stop on SIGTERM before SIGKILL.', 0, 3600),
    restart_policy: choice(
      'no',
      ['no', 'unless-stopped'] as const,
      'Docker restart policy of instances: no (nova alone decides when an instance runs again; a dockerd restart leaves them stopped) or unless-stopped (running instances come back when dockerd restarts).',
    ),
    network_attach: choice(
      'agent',
      ['agent', 'engine'] as const,
      "Who connects an instance to its project network. agent: the agent plugs a veth pair into the project bridge right after each start (dockerd attaches nothing, so no per-container DNS resolver set-up: about 60 ms less per boot, far more with many boots at once); eth0 appears a few milliseconds after the guest's first process started. engine: dockerd attaches it before the guest starts, with its embedded DNS resolver at 127.0.0.11. Either way the bridge, NAT and isolation between projects are the same; instances keep the way they were created.",
    ),
  },
} as const satisfies Record<string, Record<string, OptionSpec>>;
