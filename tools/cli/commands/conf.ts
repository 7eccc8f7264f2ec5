import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../../../conf/load.js';
import { renderSample } from '../../../conf/sample.js';

export function registerConf(program: Command): void {
  const conf = program.command('conf').description('configuration files');
  conf
    .command('check <file...>')
    .description('validate berth.conf files; names every problem')
    .action((files: string[]) => {
      try {
        loadConfig({ files, env: {} });
        process.stdout.write(`${files.join(', ')}: OK\n`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`${err.message}\n`);
        process.exitCode = 2;
      }
    });
  conf
    .command('sample')
    .description('print the sample configuration with every option')
    .action(() => {
      process.stdout.write(renderSample());
    });
}
