#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { BerthError, describeError } from '../../common/errors.js';
import { ConfigError } from '../../conf/load.js';
import { CliContext, type GlobalOptions } from './context.js';
import { UsageError } from './usage-error.js';
import { registerConf } from './commands/conf.js';
import { registerImage } from './commands/image.js';
import { registerServer } from './commands/server.js';
import { registerResize } from './commands/server-resize.js';
import { registerShelve } from './commands/server-shelve.js';
import { registerEvacuate } from './commands/server-evacuate.js';
import { registerConsole } from './commands/server-console.js';
import { registerServerVolume, registerVolume } from './commands/volume.js';
import { registerServices } from './commands/services.js';
import { registerHost } from './commands/host.js';
import { registerCompletion } from './commands/completion.js';
import { registerDev } from './commands/dev.js';
import { registerDb } from './commands/db.js';
import { FORMATS, selectColumns } from './output.js';
import { WaitTimeout } from './wait-timeout.js';
import { projectRoot } from '../lib/paths.js';

const repeatable = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];
const version = (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;

/**
 * Exit codes: 0 success, 1 the operation failed (or a --wait timed out, or one of several ids
 * failed), 2 bad usage or configuration, 3 a service is unreachable or down (or only some nodes
 * answered).
 */
const program = new Command('berth')
  .description('Berth: a compute node whose instances are Docker containers')
  .version(version, '--version', 'print the version of berth')
  .option('--config <file>', 'a berth.conf file; repeat for several, later ones win (default: $BERTH_CONFIG or /etc/berth/berth.conf)', repeatable)
  .addOption(new Option('-f, --format <format>', 'output format').choices(FORMATS).default('table'))
  .option('-c, --column <column>', 'print only this column or field; repeat for several', repeatable)
  .option('--host <host>', 'target compute node (default: [DEFAULT] host)')
  .option('--os-cloud <name>', 'OpenStack credentials from this clouds.yaml entry (default: $OS_CLOUD; without either, the OS_* variables)')
  .option('--os-image-url <url>', "image API to use with those credentials (default: $OS_IMAGE_URL, else the catalog's image endpoint)")
  .exitOverride()
  .showHelpAfterError(false);

let ctx: CliContext | null = null;

async function run(fn: (ctx: CliContext) => Promise<void>): Promise<void> {
  const opts = program.opts<GlobalOptions>();
  selectColumns(opts.column);
  ctx = new CliContext(opts);
  try {
    await fn(ctx);
  } finally {
    await ctx.close().catch(() => undefined);
  }
}

function fail(err: unknown): never {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof ConfigError) {
    process.stderr.write(`berth: invalid configuration:\n${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof WaitTimeout) {
    process.stderr.write(`berth: ${err.message}\n`);
    process.exit(1);
  }
  if (err instanceof UsageError) {
    process.stderr.write(`berth: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof BerthError) {
    process.stderr.write(`berth: ${err.message} [${err.code}]\n`);
    process.exit(/UNREACHABLE|TIMEOUT/.test(err.code) ? 3 : 1);
  }
  process.stderr.write(`berth: ${describeError(err)}\n`);
  process.exit(1);
}

registerServices(program, run);
const serverGroup = registerServer(program, run);
registerResize(serverGroup, run);
registerShelve(serverGroup, run);
registerEvacuate(serverGroup, run);
registerConsole(serverGroup, run);
registerServerVolume(serverGroup, run);
registerImage(program, run);
registerVolume(program, run);
registerHost(program, run);
registerConf(program);
registerDb(program, run);
registerDev(program, run);
registerCompletion(program);

program.parseAsync(process.argv).then(() => process.exit(process.exitCode ?? 0), fail);
