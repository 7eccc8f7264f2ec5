import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeystoneCredentials } from '../../common/keystone/types.js';

/**
 * The test OpenStack control plane of tools/dev/cloud.sh, seen from integration tests: its
 * credentials and URLs (from `$BERTH_CLOUD_STATE/cloud.env`) and the stock clients run against it.
 * Like RabbitMQ for the other integration tests, the cloud is started beforehand, not by the test.
 */
export const CLOUD_STATE = process.env.BERTH_CLOUD_STATE ?? '/var/lib/berth-cp';
const OPENSTACK = '/usr/bin/openstack';
const NOVA_MANAGE = '/usr/bin/nova-manage';

export interface ServiceUser {
  username: string;
  password: string;
}

export interface TestCloud {
  state: string;
  /** Every variable of cloud.env. */
  vars: Readonly<Record<string, string>>;
  /** The admin `OS_*` variables, including `OS_COMPUTE_API_VERSION`. */
  osEnv: Readonly<Record<string, string>>;
  admin: ServiceUser & { projectName: string };
  nova: ServiceUser;
  placement: ServiceUser;
  glance: ServiceUser;
  serviceProject: string;
  keystoneUrl: string;
  placementUrl: string;
  glanceUrl: string;
  computeUrl: string;
  neutronUrl: string;
  /** oslo.messaging form, `rabbit://user:pass@127.0.0.1:5699/`. */
  transportUrl: string;
  /** amqplib form of the same broker. */
  amqpUrl: string;
  novaConf: string;
}

function parseEnvFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) vars[m[1]] = m[2];
  }
  return vars;
}

let cached: TestCloud | undefined;

/** Reads cloud.env; throws an error naming the command to run when the cloud was never started. */
export function loadTestCloud(state = CLOUD_STATE): TestCloud {
  if (cached && cached.state === state) return cached;
  const file = join(state, 'cloud.env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EACCES' ? 'is not readable (mode 600, owned by root)' : 'does not exist';
    throw new Error(
      `test cloud: ${file} ${why}. Start the cloud as root with: tools/dev/cloud.sh start ` +
        `(after tools/dev/cloud.sh install on a fresh machine; BERTH_CLOUD_STATE selects another state directory)`,
    );
  }
  const vars = parseEnvFile(text);
  const need = (name: string): string => {
    const v = vars[name];
    if (v === undefined || v === '')
      throw new Error(`test cloud: ${file} lacks ${name}; recreate it with tools/dev/cloud.sh reset && tools/dev/cloud.sh start`);
    return v;
  };
  const osEnv = Object.fromEntries(Object.entries(vars).filter(([k]) => k.startsWith('OS_')));
  cached = {
    state,
    vars,
    osEnv,
    admin: { username: need('OS_USERNAME'), password: need('OS_PASSWORD'), projectName: need('OS_PROJECT_NAME') },
    nova: { username: need('BERTH_CLOUD_NOVA_USER'), password: need('BERTH_CLOUD_NOVA_PASS') },
    placement: { username: need('BERTH_CLOUD_PLACEMENT_USER'), password: need('BERTH_CLOUD_PLACEMENT_PASS') },
    glance: { username: need('BERTH_CLOUD_GLANCE_USER'), password: need('BERTH_CLOUD_GLANCE_PASS') },
    serviceProject: need('BERTH_CLOUD_SERVICE_PROJECT'),
    keystoneUrl: need('BERTH_CLOUD_KEYSTONE_URL'),
    placementUrl: need('BERTH_CLOUD_PLACEMENT_URL'),
    glanceUrl: need('BERTH_CLOUD_GLANCE_URL'),
    computeUrl: need('BERTH_CLOUD_COMPUTE_URL'),
    neutronUrl: need('BERTH_CLOUD_NEUTRON_URL'),
    transportUrl: need('BERTH_CLOUD_TRANSPORT_URL'),
    amqpUrl: need('BERTH_CLOUD_AMQP_URL'),
    novaConf: need('BERTH_CLOUD_NOVA_CONF'),
  };
  return cached;
}

/** Every variable of cloud.env (`OS_*` and `BERTH_CLOUD_*`), as a promise for async set-ups. */
export function cloudEnv(state = CLOUD_STATE): Promise<Record<string, string>> {
  try {
    return Promise.resolve({ ...loadTestCloud(state).vars });
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * The caller's environment without anything that would point Debian's Python or the OpenStack
 * clients elsewhere (another python3's paths, a clouds.yaml entry, stray OS_* settings).
 */
function clientEnv(cloud: TestCloud): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('OS_') || ['PYTHONPATH', 'PYTHONHOME', 'PYENV_VERSION', 'VIRTUAL_ENV'].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, ...cloud.osEnv, PYTHONNOUSERSITE: '1', PYTHONDONTWRITEBYTECODE: '1' };
}

export interface ClientOptions {
  /** Kills the client after this long (default 60 s; each openstack start alone costs about 3 s). */
  timeoutMs?: number;
  cloud?: TestCloud;
}

function runClient(file: string, args: string[], opts: ClientOptions): Promise<string> {
  const cloud = opts.cloud ?? loadTestCloud();
  const timeout = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: clientEnv(cloud), timeout, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const how = err.killed ? `killed after ${timeout} ms` : `exit ${String(err.code)}`;
      reject(new Error(`${file} ${args.join(' ')}: ${how}\n${stderr.trim().slice(-2000)}`));
    });
  });
}

/** Runs `openstack ARGS` as the cloud's admin; with `json`, appends `-f json` and parses the output. */
export function openstack<T = unknown>(args: string[], opts: ClientOptions & { json: true }): Promise<T>;
export function openstack(args: string[], opts?: ClientOptions & { json?: false }): Promise<string>;
export async function openstack(args: string[], opts: ClientOptions & { json?: boolean } = {}): Promise<unknown> {
  const out = await runClient(OPENSTACK, opts.json ? [...args, '-f', 'json'] : args, opts);
  if (!opts.json) return out;
  try {
    return JSON.parse(out) as unknown;
  } catch {
    throw new Error(`openstack ${args.join(' ')} -f json printed no JSON: ${out.slice(0, 500)}`);
  }
}

/**
 * Runs python-novaclient's `nova ARGS` as the cloud's admin, for what the openstack client gets
 * wrong (its `server evacuate` fails on novaclient's answer after the request was sent).
 */
export function novaClient(args: string[], opts: ClientOptions = {}): Promise<string> {
  return runClient('/usr/bin/nova', args, opts);
}

/** Runs `nova-manage --config-file <the cloud's nova.conf> ARGS`; resolves with its stdout. */
export function novaManage(args: string[], opts: ClientOptions = {}): Promise<string> {
  const cloud = opts.cloud ?? loadTestCloud();
  return runClient(NOVA_MANAGE, ['--config-file', cloud.novaConf, ...args], opts);
}

/** Keystone credentials of one of the cloud's service users (nova, placement, glance) in the service project. */
export function serviceCredentials(cloud: TestCloud, user: { username: string; password: string }): KeystoneCredentials {
  return {
    auth_url: cloud.keystoneUrl,
    username: user.username,
    password: user.password,
    project_name: cloud.serviceProject,
    user_domain_name: 'Default',
    project_domain_name: 'Default',
    region_name: 'RegionOne',
  };
}

/**
 * The `[neutron]` section of a Berth node joined to `cloud`: nova's service user, ports bound to
 * the cloud's L2 host (`BERTH_CLOUD_NEUTRON_HOST`); null when the cloud runs without Neutron.
 */
export function neutronSection(cloud: TestCloud): Record<string, unknown> | null {
  const l2Host = cloud.vars.BERTH_CLOUD_NEUTRON_HOST;
  if (!l2Host) return null;
  return {
    auth_url: cloud.keystoneUrl,
    username: cloud.nova.username,
    password: cloud.nova.password,
    project_name: cloud.serviceProject,
    region_name: 'RegionOne',
    binding_host: l2Host,
    ...(cloud.vars.BERTH_CLOUD_NEUTRON_URL ? { endpoint_override: cloud.vars.BERTH_CLOUD_NEUTRON_URL } : {}),
  };
}

/**
 * Whether nova lists `host` as a hypervisor that is up. Asked at compute microversion 2.87: from
 * 2.88 nova calls get_host_uptime on every node it counts as up, and waits on a stopped one.
 */
export async function hypervisorUp(host: string, opts: ClientOptions = {}): Promise<boolean> {
  const rows = await openstack<Array<{ 'Hypervisor Hostname': string; State: string }>>(['--os-compute-api-version', '2.87', 'hypervisor', 'list'], {
    ...opts,
    json: true,
  });
  return rows.some((h) => h['Hypervisor Hostname'] === host && h.State === 'up');
}
