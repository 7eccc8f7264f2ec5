import type { Command } from 'commander';
import { requestJson, parseEndpoint } from '../../../common/http-client.js';
import { describeError } from '../../../common/errors.js';
import { PROCESS_NAMES, SERVICES, runningPid, servicePaths, startService, stopService } from '../../lib/supervisor.js';
import type { ServiceName } from '../../lib/paths.js';
import type { CliContext } from '../context.js';
import { printList } from '../output.js';
import { imageServiceUp, imageServiceUrl } from '../service-probe.js';

type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

function endpointOf(ctx: CliContext, name: ServiceName): string {
  if (name === 'agent') return ctx.config.agent.url;
  if (name === 'images') return imageServiceUrl(ctx.config);
  return `${ctx.config.DEFAULT.transport_url.replace(/\/\/[^@]*@/, '//')} (queue compute.${ctx.host})`;
}

/** Whether a service answers: HTTP services by their API, the compute service by an RPC ping. */
async function probe(ctx: CliContext, name: ServiceName): Promise<boolean> {
  try {
    if (name === 'agent') return (await requestJson(parseEndpoint(ctx.config.agent.url), { path: '/healthz', timeoutMs: 2000, accept: [503] })).status < 500;
    if (name === 'images') return await imageServiceUp(ctx.config);
    const rpc = await ctx.rpcClient();
    await rpc.call(ctx.computeKey, { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: 'berth' } }, 3);
    return true;
  } catch {
    return false;
  }
}

async function waitHealthy(ctx: CliContext, name: ServiceName, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!runningPid(ctx.config.DEFAULT.state_path, name)) return false;
    if (await probe(ctx, name)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * Starts Berth's own services (images, agent, compute) with the node's configuration, each
 * waited for until it answers. Nothing else: no packages, no system services, no files outside
 * `state_path` (the development stack is `berth dev up`).
 */
export async function startServices(ctx: CliContext, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const state = ctx.config.DEFAULT.state_path;
  const rows: Record<string, unknown>[] = [];
  for (const name of SERVICES) {
    const pid = startService(state, name, env);
    const healthy = await waitHealthy(ctx, name, 60_000);
    rows.push({
      service: PROCESS_NAMES[name],
      pid,
      status: healthy ? 'up' : 'FAILED',
      endpoint: endpointOf(ctx, name),
      log: servicePaths(state, name).logFile,
    });
    if (!healthy) {
      printList(['service', 'pid', 'status', 'endpoint', 'log'], rows, ctx.format);
      throw new Error(`${PROCESS_NAMES[name]} did not become healthy; see ${servicePaths(state, name).logFile}`);
    }
  }
  printList(['service', 'pid', 'status', 'endpoint', 'log'], rows, ctx.format);
}

export function registerServices(program: Command, run: Run): void {
  program
    .command('up')
    .description("start Berth's services (images, agent, compute) in the background with the node's configuration; installs and changes nothing else")
    .action(() => run((ctx) => startServices(ctx)));

  program
    .command('down')
    .description('stop the Berth services (gracefully; in-flight work finishes)')
    .action(() =>
      run(async (ctx) => {
        for (const name of [...SERVICES].reverse()) {
          const stopped = await stopService(ctx.config.DEFAULT.state_path, name);
          process.stdout.write(`${PROCESS_NAMES[name]}: ${stopped ? 'stopped' : 'not running'}\n`);
        }
      }),
    );

  program
    .command('status')
    .description('whether each Berth service runs and answers')
    .action(() =>
      run(async (ctx) => {
        const rows: Record<string, unknown>[] = [];
        let allUp = true;
        for (const name of SERVICES) {
          const pid = runningPid(ctx.config.DEFAULT.state_path, name);
          const healthy = await probe(ctx, name).catch((e) => {
            void describeError(e);
            return false;
          });
          allUp &&= healthy;
          rows.push({
            service: PROCESS_NAMES[name],
            pid: pid ?? '-',
            status: healthy ? 'up' : pid ? 'not answering' : 'down',
            endpoint: endpointOf(ctx, name),
          });
        }
        printList(['service', 'pid', 'status', 'endpoint'], rows, ctx.format);
        if (!allUp) process.exitCode = 3;
      }),
    );
}
