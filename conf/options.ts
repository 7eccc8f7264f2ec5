/**
 * Option declarations, oslo.config style: each option is declared once, here, with its section,
 * type, default and help. Everything else (parsing, the sample file, the reference doc) is derived.
 */
export type OptionType = 'string' | 'int' | 'float' | 'bool' | 'url' | 'enum' | 'list';

export interface OptionSpec<T = unknown> {
  type: OptionType;
  default: T;
  help: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  secret?: boolean;
  /** Shown in the sample instead of a default computed at run time (e.g. the host name). */
  sampleDefault?: string;
}

const str = (def: string, help: string, extra: Partial<OptionSpec<string>> = {}): OptionSpec<string> => ({ type: 'string', default: def, help, ...extra });
const url = (def: string, help: string, extra: Partial<OptionSpec<string>> = {}): OptionSpec<string> => ({ type: 'url', default: def, help, ...extra });
const int = (def: number, help: string, min?: number, max?: number): OptionSpec<number> => ({ type: 'int', default: def, help, min, max });
const float = (def: number, help: string, min?: number, max?: number): OptionSpec<number> => ({ type: 'float', default: def, help, min, max });
const bool = (def: boolean, help: string): OptionSpec<boolean> => ({ type: 'bool', default: def, help });
const choice = <C extends string>(def: C, choices: readonly C[], help: string): OptionSpec<C> => ({ type: 'enum', default: def, help, choices });
const list = (def: string[], help: string): OptionSpec<string[]> => ({ type: 'list', default: def, help });

/** The Keystone v3 password block oslo services share (keystoneauth's `password` plugin). */
const keystoneAuth = (purpose: string) => ({
  auth_url: str('', `Keystone v3 endpoint (e.g. http://controller:5000/v3) ${purpose}. Empty: Keystone is not used here.`),
  username: str('', 'Keystone user name.'),
  password: str('', 'Keystone password of that user.', { secret: true }),
  project_name: str('service', 'Project the token is scoped to.'),
  user_domain_name: str('Default', 'Domain of the user.'),
  project_domain_name: str('Default', 'Domain of the project.'),
  region_name: str('', 'Region whose catalog endpoints are used; empty: the first region offering the service.'),
});

export const schema = {
  DEFAULT: {
    host: str(
      '',
      "Name of this compute node: the RPC server name (queue compute.<host>) and the host recorded on its instances. Defaults to the machine's host name.",
      { sampleDefault: '<hostname>' },
    ),
    transport_url: url('rabbit://guest:guest@127.0.0.1:5672/', 'AMQP 0-9-1 broker URL, oslo.messaging style: rabbit://user:pass@host:port/vhost.', {
      secret: true,
    }),
    control_exchange: str('nova', "Exchange RPC requests and notifications are published on (nova's control_exchange)."),
    state_path: str('/var/lib/berth', "Directory for Berth's local state: SQLite files, the image store's blobs, config drives."),
    debug: bool(false, 'Log at debug level.'),
    db_auto_sync: bool(
      true,
      'Apply pending database migrations when berth-compute and berth-images start, under the same lock as `berth db sync`. false: upgrades are an explicit step (`berth db sync`, see the upgrade order in the operator guide) and a service refuses to start on a schema older than it needs. Either way a service refuses a schema a newer Berth migrated.',
    ),
    max_concurrent_builds: int(10, 'Builds (and other long instance operations) run at once; further messages wait in the broker.', 1, 1000),
    max_message_bytes: int(16777216, 'Largest RPC message accepted, in bytes; larger ones are dropped and logged.', 1024, 1073741824),
    rpc_response_timeout: int(60, 'Seconds the berth CLI waits for an RPC call reply.', 1, 3600),
    status_listen: str(
      '127.0.0.1:9394',
      'Where berth-compute serves /healthz, /readyz and /metrics (Prometheus), without authentication: HOST:PORT or an absolute unix socket path; empty disables it.',
    ),
    compute_hosts: list([], 'Compute nodes (their [DEFAULT] host names) `berth server list --all-hosts` asks when --hosts is not given; used by the CLI only.'),
  },
  nova: {
    control_plane: choice(
      'standalone',
      ['standalone', 'nova'] as const,
      "Who is the authority for instances: standalone (Berth's own database; any oslo.messaging client drives the node) or nova (a real Nova: the node registers with nova-conductor and Placement, and every instance change is saved through the conductor).",
    ),
    service_version: int(
      64,
      "nova-compute service version the node claims when it registers (nova mode). It must lie in the control plane's accepted window: 64 for Zed (61-63 are accepted by Zed too); older releases refuse newer numbers.",
      1,
      1000,
    ),
    report_interval: int(
      10,
      'Seconds between service heartbeats to nova-conductor (nova mode); Nova marks the node down after its service_down_time (60 s) without one.',
      1,
      300,
    ),
    update_resources_interval: int(60, 'Seconds between refreshes of the ComputeNode record and the Placement inventory (nova mode).', 5, 86400),
    conductor_topic: str('conductor', 'Routing key of nova-conductor (nova mode).'),
    host_ip: str('127.0.0.1', "IP address recorded as the hypervisor's host_ip (shown by `openstack hypervisor list`)."),
  },
  placement: {
    ...keystoneAuth("of the service user that manages this node's resource provider in Placement (nova mode)"),
    valid_interfaces: choice('public', ['public', 'internal', 'admin'] as const, 'Which catalog endpoint of Placement to use.'),
  },
  keystone_authtoken: {
    ...keystoneAuth(
      'that validates incoming X-Auth-Token headers (glance-bridge and agent with auth_strategy = keystone); also the service user doing the validation',
    ),
  },
  compute: {
    vcpus: int(0, "vCPUs this node offers before over-commit; 0 counts the host's CPUs.", 0, 4096),
    memory_mb: int(0, "Memory (MiB) this node offers; 0 reads the host's total memory.", 0, 1 << 30),
    disk_gb: int(0, 'Disk (GiB) this node offers for instances; 0 reads the size of the filesystem holding state_path.', 0, 1 << 30),
    reserved_host_cpus: int(0, "vCPUs kept for the host itself (nova's reserved_host_cpus).", 0, 4096),
    reserved_host_memory_mb: int(512, "Memory (MiB) kept for the host itself (nova's reserved_host_memory_mb).", 0, 1 << 30),
    reserved_host_disk_mb: int(0, "Disk (MiB) kept for the host itself (nova's reserved_host_disk_mb).", 0, 1 << 30),
    cpu_allocation_ratio: float(4.0, "Virtual to physical CPU over-commit ratio (nova's cpu_allocation_ratio).", 0.01, 1000),
    ram_allocation_ratio: float(1.0, "Memory over-commit ratio (nova's ram_allocation_ratio).", 0.01, 1000),
    disk_allocation_ratio: float(1.0, "Disk over-commit ratio (nova's disk_allocation_ratio).", 0.01, 1000),
    report_interval: int(60, 'Seconds between capacity reports (a notification and the answer to get_host_capacity are refreshed).', 1, 86400),
    sync_power_state_interval: int(
      60,
      'Seconds between comparisons of the records with the containers the agent reports; drift is corrected with notifications. 0 disables (the pass still runs at start-up).',
      0,
      86400,
    ),
  },
  database: {
    connection: str(
      'sqlite:///$state_path/driver.sqlite',
      'Database of the compute driver: sqlite:///PATH (embedded default) or postgres://user:pass@host/db (shared).',
      { secret: true },
    ),
  },
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
  image_store: {
    listen: str('127.0.0.1:9292', "Where the glance-bridge listens (HOST:PORT). 9292 is Glance's port."),
    connection: str('sqlite:///$state_path/images.sqlite', "Database of the image store's metadata.", { secret: true }),
    blob_path: str('$state_path/blobs', 'Directory of the content-addressed blob store.'),
    default_project: str('berth', 'Project owning images in noauth mode.'),
    max_body_bytes: int(1048576, 'Largest JSON request body the image API accepts, in bytes.', 1024, 104857600),
    max_image_bytes: int(
      1099511627776,
      "Largest image data an upload (PUT /v2/images/{id}/file) may store, in bytes; larger uploads are refused with 413 and the image is killed (Glance's image_size_cap).",
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    max_images_per_project: int(0, 'Most live images one project may own; creating one more is refused with 413. 0: no limit.', 0, Number.MAX_SAFE_INTEGER),
    max_bytes_per_project: int(
      0,
      'Most bytes of image data one project may store; an upload that would pass it is refused with 413. Uploads and imports still running count with the bytes they declared (or, for a chunked upload, have received), so several running at once cannot pass it together. 0: no limit.',
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    max_concurrent_imports: int(
      16,
      'Most registry imports (POST /v2/berth/import, web-download) running at once in the image service; one more is refused with 413 until one finishes. An import answered by an image already imported or importing takes no slot. 0: no limit.',
      0,
      100000,
    ),
    max_concurrent_imports_per_project: int(
      4,
      "Most registry imports one project may have running at once (Glance's image_count_uploading); one more is refused with 413 until one finishes. 0: no limit.",
      0,
      100000,
    ),
    image_property_quota: int(
      128,
      "Most custom properties an image may have (Glance's image_property_quota); a create or patch that would leave more is refused with 413. Keys and values set through the API have at most 255 characters each.",
      1,
      100000,
    ),
    web_download_urls: bool(
      true,
      "Let web-download (POST /v2/images/{id}/import) fetch http:// and https:// URLs into images whose container_format is not docker, as Glance's web-download does. Each destination, redirect hop included, passes the [registry] allowed_internal checks, and max_image_bytes, max_bytes_per_project and the max_concurrent_imports limits apply. false: only docker:// references are imported.",
    ),
    metadefs_path: str(
      '',
      "Folder of metadata definition files in Glance's format (the JSON files Glance ships in /etc/glance/metadefs, which glance-manage db_load_metadefs loads), served read-only at /v2/metadefs; namespaces that name no owner belong to default_project. Read at start-up: a file that does not parse stops the service naming it. Empty: an empty catalog, as a Glance with no definitions loaded.",
    ),
    registry_listen: str(
      '127.0.0.1:5050',
      "Where the read-only Registry v2 endpoint hosts pull imported images from listens (HOST:PORT); separate from listen because docker's /v2/ paths overlap Glance's /v2/images. Empty: not served.",
    ),
    auth_strategy: choice(
      'noauth',
      ['noauth', 'keystone'] as const,
      "How callers of the image API are identified: noauth (X-Project-Id or default_project, as Glance's noauth pipeline) or keystone (X-Auth-Token validated against [keystone_authtoken]; the token's project owns what it creates, admins see everything).",
    ),
    noauth_beyond_loopback: bool(
      false,
      'With auth_strategy = noauth, allow listen and registry_listen on addresses other than loopback. noauth believes the X-Project-Id and X-Roles headers, so whoever reaches the port acts as any project, or as admin: set this only on a network where every client is trusted; a cloud with tenants uses keystone.',
    ),
  },
  registry: {
    insecure_hosts: list(
      ['127.0.0.1:5000', 'localhost:5000'],
      'Registries spoken to over plain HTTP (loopback registries by default); all others use HTTPS. A redirect may lead to plain HTTP only from one of these to one of these. Loopback is still refused unless allowed_internal lists it.',
    ),
    allowed_internal: list(
      [],
      'Internal destinations the image service may fetch from anyway: CIDRs (10.20.0.0/16, fd00::/8; an address alone means /32 or /128, any port) or HOST[:PORT] (registry.internal:5000, 127.0.0.1:5000). Every registry, token realm and redirect hop is resolved and refused when an address is loopback, link-local (169.254.169.254), private (RFC 1918, fc00::/7, 100.64.0.0/10), unspecified, multicast or otherwise reserved, IPv4-mapped IPv6 included, unless listed here. Empty: only public addresses.',
    ),
    credentials_file: str(
      '',
      'Registry credentials per registry, in Docker\'s config.json format: {"auths": {"HOST[:PORT]": {"auth": "BASE64(USER:PASSWORD)"}}} (or "username" and "password" instead of "auth"). Each set is sent only to its registry, and to a token realm on the same host over HTTPS (plain HTTP only for a loopback registry in insecure_hosts); other realms are asked for anonymous tokens. Empty: no credentials.',
    ),
    credentials_host: str(
      '',
      'HOST[:PORT] of the one registry that username and password belong to (as written in image references; docker.io for Docker Hub). Needed whenever username is set: they are never sent to another registry.',
    ),
    username: str('', 'Deprecated (use credentials_file): user for the registry named in credentials_host.'),
    password: str('', 'Deprecated (use credentials_file): password for the registry named in credentials_host.', { secret: true }),
    max_parallel_layers: int(4, 'Layers fetched at once by one import.', 1, 64),
    request_timeout: int(60, 'Seconds without progress before a registry request is abandoned.', 1, 3600),
    retries: int(
      5,
      'Attempts after the first that a registry request may make when the registry is unreachable, times out or answers 429 or 5xx. A blob download that breaks off resumes with a Range request from the byte where it stopped; only a fault with less than 1 MiB of progress since the previous one uses up an attempt. 0: no retries.',
      0,
      100,
    ),
    retry_delay_ms: int(
      500,
      'Wait before the first retry of a registry request, in milliseconds; it doubles for each further one (with jitter) up to 30 s, unless the registry asks for another with Retry-After.',
      0,
      60000,
    ),
    max_manifest_bytes: int(4194304, 'Largest manifest or index accepted, in bytes.', 1024, 104857600),
    max_layer_bytes: int(10737418240, 'Largest single blob accepted, in bytes.', 1, Number.MAX_SAFE_INTEGER),
    platform: str('linux/amd64', 'Platform (OS/ARCH[/VARIANT]) picked from multi-platform images (manifest lists, OCI indexes).'),
    max_layers: int(128, 'Most layers an imported image may have; a manifest with more is refused before anything is fetched.', 1, 10000),
    max_image_bytes: int(
      68719476736,
      'Most bytes the config and layers of an imported image may declare in total; checked before anything is fetched.',
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    max_uncompressed_bytes: int(
      68719476736,
      'Most bytes one layer may unpack to; the layer scanner stops a larger one while it streams in.',
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    max_uncompressed_ratio: int(
      100,
      'Most uncompressed bytes per compressed byte of a layer (checked once a layer is past 64 MiB unpacked): stops decompression bombs.',
      2,
      100000,
    ),
  },
  oslo_messaging_rabbit: {
    amqp_durable_queues: bool(false, 'Declare exchange nova and the compute queues durable (must match the other nova services).'),
    amqp_auto_delete: bool(false, 'Declare exchange nova and the topic queues auto-delete (must match the other nova services).'),
    rabbit_ha_queues: bool(
      false,
      'Add x-ha-policy: all to declared queues (classic mirrored queues, RabbitMQ before 3.0; later releases mirror by policy only). Cannot be combined with rabbit_quorum_queue.',
    ),
    rabbit_quorum_queue: bool(
      false,
      'Declare the topic queues (compute, compute.<host>, notifications) as quorum queues (x-queue-type: quorum): durable and replicated over the cluster, surviving the loss of a minority of nodes. Implies durable exchanges and queues (amqp_durable_queues is then ignored). Must match the other nova services.',
    ),
    rabbit_quorum_delivery_limit: int(
      0,
      'x-delivery-limit of quorum queues: a message redelivered more often is dropped (or dead-lettered, by a broker policy). 0 sets no limit.',
      0,
      2147483647,
    ),
    rabbit_quroum_max_memory_length: int(
      0,
      "x-max-in-memory-length of quorum queues: most messages kept in memory (oslo's spelling of the option). 0 sets no limit.",
      0,
      2147483647,
    ),
    rabbit_quroum_max_memory_bytes: int(
      0,
      "x-max-in-memory-bytes of quorum queues: most bytes kept in memory (oslo's spelling of the option). 0 sets no limit.",
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    rabbit_transient_queues_ttl: int(1800, 'x-expires, in seconds, of fanout and reply queues; 0 omits it.', 0, 86400 * 365),
    heartbeat_timeout_threshold: int(60, 'AMQP heartbeat timeout in seconds; 0 disables heartbeats.', 0, 3600),
    kombu_failover_strategy: choice(
      'round-robin',
      ['round-robin', 'shuffle'] as const,
      'How the next host of a transport_url with several hosts is chosen when the current one fails: round-robin (in order) or shuffle (at random). The list is shuffled once at start-up either way, as oslo does.',
    ),
    rabbit_retry_interval: int(1, 'Seconds to wait after every host of transport_url has failed once, before trying them again.', 0, 3600),
    rabbit_retry_backoff: int(2, 'Seconds added to that wait after each further round of failed attempts.', 0, 3600),
    rabbit_interval_max: int(
      30,
      'Longest wait between rounds of reconnect attempts, in seconds (the wait stops growing past this plus rabbit_retry_interval, as kombu has it).',
      1,
      3600,
    ),
    kombu_reconnect_delay: float(
      1,
      'Seconds to wait after losing an established connection before reconnecting (and after each failed attempt while reconnecting).',
      0,
      4.5,
    ),
    kombu_missing_consumer_retry_timeout: int(
      60,
      "Seconds a reply is retried (every 0.25 s) while the caller's reply queue is missing, e.g. while the caller fails over to another broker node.",
      0,
      3600,
    ),
    ssl: bool(false, 'Connect to the broker over TLS (also: an amqps:// transport_url, or ?ssl=1 in it).'),
    ssl_ca_file: str(
      '',
      "CA certificates (PEM) the broker's certificate must chain to. Empty: the connection is encrypted but the broker is not authenticated.",
    ),
    ssl_cert_file: str('', 'Client certificate (PEM) offered to the broker, for brokers that require one (or log in with EXTERNAL).'),
    ssl_key_file: str('', 'Private key (PEM) of ssl_cert_file; empty: the key is read from ssl_cert_file.'),
    ssl_version: str('', 'Pin one TLS version: TLSv1, TLSv1_1, TLSv1_2, or SSLv23 (negotiate, as empty does). Empty is best.'),
    ssl_enforce_hostname_verification: bool(
      false,
      "Also check the broker's host name against its certificate when ssl_ca_file is set (oslo's default: the chain is verified, the name is not).",
    ),
  },
  notifications: {
    notification_format: choice(
      'versioned',
      ['versioned', 'unversioned', 'both'] as const,
      "Which notifications to emit: nova's versioned ones, the legacy unversioned ones, or both.",
    ),
    driver: choice('messagingv2', ['messagingv2', 'messaging', 'noop'] as const, 'messagingv2 (enveloped), messaging (legacy bare body) or noop (none).'),
    versioned_notifications_topic: str('versioned_notifications', 'Topic of versioned notifications (routing key <topic>.<priority>).'),
    legacy_notifications_topic: str('notifications', 'Topic of legacy notifications.'),
  },
} as const satisfies Record<string, Record<string, OptionSpec>>;

export type Schema = typeof schema;
type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;
export type Config = {
  readonly [Sec in keyof Schema]: { readonly [K in keyof Schema[Sec]]: ValueOf<Schema[Sec][K]> };
};
