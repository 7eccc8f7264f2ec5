import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../lib/paths.js';
import { UsageError } from '../usage-error.js';
import type { CliContext } from '../context.js';
import { startServices } from './services.js';

type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

/**
 * The development stack, only by explicit request: `berth dev ...` runs the scripts under
 * tools/dev/ of a source checkout. They install Debian packages, start RabbitMQ, dockerd, a
 * registry, PostgreSQL and a test OpenStack cloud on loopback, and may write their configuration
 * files: never for a production node, which is why `berth up` never calls them and the release
 * package does not ship them.
 */
function devScript(name: string): string {
  const path = join(projectRoot(), 'tools', 'dev', name);
  if (!existsSync(path)) throw new UsageError(`berth dev needs a source checkout of Berth (${join('tools', 'dev', name)} is not part of an installed package)`);
  return path;
}

function runScript(name: string, args: string[]): void {
  const r = spawnSync('bash', [devScript(name), ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}

/**
 * Without a config file, the development set-up imports from the loopback registry
 * tools/dev/services.sh runs, which the image service refuses as internal unless allowlisted:
 * `berth dev up` allows that one registry. A deployment gets nothing implicit: it lists its
 * internal registries in [registry] allowed_internal itself.
 */
export function devRegistryAllowance(): NodeJS.ProcessEnv {
  if (process.env.BERTH__REGISTRY__ALLOWED_INTERNAL !== undefined) return {};
  const port = process.env.BERTH_REGISTRY_PORT ?? '5000';
  return { BERTH__REGISTRY__ALLOWED_INTERNAL: `127.0.0.1:${port},localhost:${port}` };
}

export function registerDev(program: Command, run: Run): void {
  const dev = program.command('dev').description('development stack on loopback (a source checkout only; installs packages: never on a production node)');
  const actions = ['install', 'start', 'stop', 'status'];
  dev
    .command('services <action>')
    .description(`RabbitMQ, dockerd, a registry and PostgreSQL on loopback (${actions.join('|')}; tools/dev/services.sh)`)
    .action((action: string) => {
      if (!actions.includes(action)) throw new UsageError(`berth dev services: unknown action ${JSON.stringify(action)} (one of ${actions.join(', ')})`);
      runScript('services.sh', [action]);
    });
  dev
    .command('cloud <action>')
    .description(`the test OpenStack cloud on loopback (${[...actions, 'reset'].join('|')}; tools/dev/cloud.sh)`)
    .action((action: string) => {
      if (![...actions, 'reset'].includes(action)) throw new UsageError(`berth dev cloud: unknown action ${JSON.stringify(action)}`);
      runScript('cloud.sh', [action]);
    });
  dev
    .command('test-image')
    .description("build the busybox test image from Debian's busybox-static and push it to the loopback registry")
    .action(() => runScript('build-test-image.sh', []));
  dev
    .command('up')
    .description('start the development services if down, then the Berth services allowed to import from the loopback registry')
    .action(() =>
      run(async (ctx) => {
        const status = spawnSync('bash', [devScript('services.sh'), 'status'], { encoding: 'utf8' });
        if (status.status !== 0 || /down/.test(status.stdout)) {
          const r = spawnSync('bash', [devScript('services.sh'), 'start'], { stdio: 'inherit' });
          if (r.status !== 0) throw new Error('could not start the development services (tools/dev/services.sh start)');
        }
        await startServices(ctx, devRegistryAllowance());
      }),
    );
}
