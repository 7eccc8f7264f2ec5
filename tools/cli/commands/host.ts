import type { Command } from 'commander';
import { UsageError, type CliContext } from '../context.js';
import { printObject, printTable } from '../output.js';

type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

interface Capacity {
  host: string;
  node: string;
  hypervisor_type: string;
  instances: number;
  updated_at: string;
  maintenance?: boolean;
  resources: Record<string, { total: number; reserved: number; allocation_ratio: number; capacity: number; used: number; free: number }>;
}

/**
 * Usage against capacity as a bar of `width` cells: `[#######.............]  35%`. Plain ASCII,
 * so it survives any terminal, a pipe and a log; over capacity (an allocation ratio lowered
 * under running instances) fills the bar and shows the real percentage.
 */
export function usageBar(used: number, capacity: number, width = 20): string {
  const share = capacity > 0 ? used / capacity : used > 0 ? 1 : 0;
  const filled = Math.min(width, Math.round(Math.max(0, share) * width));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${`${Math.round(share * 100)}%`.padStart(4)}`;
}

export function registerHost(program: Command, run: Run): void {
  const host = program.command('host').description('compute nodes');
  host
    .command('maintenance <on|off>')
    .description('enter or leave a maintenance window (host_maintenance_mode): while on, the node takes no new instances and runs the ones it has')
    .action((mode: string) =>
      run(async (ctx) => {
        if (mode !== 'on' && mode !== 'off') throw new UsageError(`maintenance takes on or off, not ${JSON.stringify(mode)}`);
        const rpc = await ctx.rpcClient();
        const result = await rpc.call<string>(
          ctx.computeKey,
          { method: 'host_maintenance_mode', version: '6.0', args: { host: ctx.host, mode: mode === 'on' } },
          ctx.config.DEFAULT.rpc_response_timeout,
        );
        printObject({ host: ctx.host, maintenance_mode: result }, ctx.format);
      }),
    );
  host
    .command('show')
    .description('capacity, usage and instance count of a node (--host to pick one)')
    .action(() =>
      run(async (ctx) => {
        const rpc = await ctx.rpcClient();
        const cap = await rpc.call<Capacity>(
          ctx.computeKey,
          { method: 'get_host_capacity', namespace: 'berth', version: '1.0', args: {} },
          ctx.config.DEFAULT.rpc_response_timeout,
        );
        if (ctx.format !== 'table' || (ctx.opts.column?.length ?? 0) > 0) return printObject(cap as unknown as Record<string, unknown>, ctx.format);
        process.stdout.write(
          `host ${cap.host} (node ${cap.node}, ${cap.hypervisor_type}), ${cap.instances} instance(s)${cap.maintenance ? ', in maintenance' : ''}\n`,
        );
        printTable(
          ['Resource', 'Total', 'Reserved', 'Ratio', 'Capacity', 'Used', 'Free', 'Usage'],
          Object.entries(cap.resources).map(([rc, r]) => [
            rc,
            r.total,
            r.reserved,
            r.allocation_ratio,
            r.capacity,
            r.used,
            r.free,
            usageBar(r.used, r.capacity),
          ]),
        );
      }),
    );
}
