import { str, url, int, float, bool, choice, list, keystoneAuth, type OptionSpec } from './spec.js';

/** The service itself: its node name, broker and state ([DEFAULT]), the nova and placement services it talks to, Keystone, the compute limits and the database. */
export const serviceSections = {
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
    compute_hosts: list(
      [],
      'Compute nodes (their [DEFAULT] host names) `berth server list --all-hosts` asks when --hosts is not given, and among which `berth server evacuate` without --host picks the target; used by the CLI only.',
    ),
    flavors: list(
      [],
      'Flavors `berth server create|resize --flavor NAME` resolves, each NAME:VCPUS:RAM_MB[:DISK_GB] (disk 1 GiB when left out), e.g. m1.tiny:1:512:1, m1.small:1:2048:20; used by the CLI only (a node joined to nova gets its flavors from nova).',
    ),
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
  neutron: {
    ...keystoneAuth(
      "of the service user that creates and binds instance ports in Neutron (nova mode; needs the admin role to bind a port to a host, as nova's [neutron] user). Empty: no Neutron ports; instances are on project networks whatever the request",
    ),
    valid_interfaces: choice('public', ['public', 'internal', 'admin'] as const, 'Which catalog endpoint of Neutron to use.'),
    endpoint_override: str('', "Neutron's URL (http://host:9696), used instead of the catalog's network endpoint; empty: the catalog's."),
    binding_host: str(
      '',
      "Host name the linuxbridge agent of this machine reports to Neutron, which instance ports are bound to (binding:host_id); empty: [DEFAULT] host, as when nova-compute and the agent share the machine's name.",
    ),
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
    vif_plugging_timeout: int(
      300,
      "Seconds a build waits for Neutron's network-vif-plugged events of the instance's ports after plugging them (nova's vif_plugging_timeout); 0: no wait.",
      0,
      3600,
    ),
    vif_plugging_is_fatal: bool(
      true,
      "Whether a build whose network-vif-plugged events did not all come within vif_plugging_timeout fails (nova's vif_plugging_is_fatal); false: it goes ACTIVE anyway.",
    ),
    sync_power_state_interval: int(
      60,
      'Seconds between comparisons of the records with the containers the agent reports; drift is corrected with notifications. 0 disables (the pass still runs at start-up).',
      0,
      86400,
    ),
    shelved_offload_time: int(
      0,
      "Seconds a shelved instance keeps its stopped container (and its claim) on this node before it is offloaded (nova's shelved_offload_time): 0 offloads at once after the shelve, -1 never (only shelve_offload_instance does).",
      -1,
      1 << 30,
    ),
    shelved_poll_interval: int(
      3600,
      "Seconds between checks for shelved instances due to be offloaded, when shelved_offload_time is positive (nova's shelved_poll_interval); 0 disables the check.",
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
} as const satisfies Record<string, Record<string, OptionSpec>>;
