/** How the server commands take a flavor: `--flavor NAME` from `[DEFAULT] flavors`, or its sizes given one by one. */
import type { Command } from 'commander';
import { parseFlavors, type NamedFlavor } from '../../../conf/flavors.js';
import { didYouMean } from '../../../conf/load.js';
import type { Config } from '../../../conf/options.js';
import { UsageError } from '../context.js';
import { positiveInt } from './server-args.js';

export interface FlavorArgs {
  flavor?: string;
  flavorVcpus?: number;
  flavorRam?: number;
  flavorDisk?: number;
}

export function addFlavorOptions(cmd: Command): Command {
  return cmd
    .option('--flavor <name>', 'a flavor named in [DEFAULT] flavors (instead of --flavor-vcpus and --flavor-ram)')
    .option('--flavor-vcpus <n>', 'vCPUs', positiveInt('--flavor-vcpus'))
    .option('--flavor-ram <mb>', 'memory in MiB', positiveInt('--flavor-ram'))
    .option('--flavor-disk <gb>', 'root disk in GiB (default 1)', positiveInt('--flavor-disk'));
}

/** The flavor the arguments name; a UsageError naming what is missing, unknown or given twice. */
export function chosenFlavor(config: Config, o: FlavorArgs): Partial<Pick<NamedFlavor, 'name'>> & Omit<NamedFlavor, 'name'> {
  const sized = o.flavorVcpus !== undefined || o.flavorRam !== undefined || o.flavorDisk !== undefined;
  if (o.flavor === undefined) {
    if (o.flavorVcpus === undefined || o.flavorRam === undefined) throw new UsageError('give --flavor NAME, or --flavor-vcpus and --flavor-ram');
    return { vcpus: o.flavorVcpus, memory_mb: o.flavorRam, root_gb: o.flavorDisk ?? 1 };
  }
  if (sized) throw new UsageError('--flavor NAME and --flavor-vcpus/--flavor-ram/--flavor-disk exclude each other');
  const { flavors, problems } = parseFlavors(config.DEFAULT.flavors);
  const found = flavors.find((f) => f.name === o.flavor);
  if (found) return found;
  const names = flavors.map((f) => f.name);
  const known = names.length ? `; [DEFAULT] flavors names ${names.join(', ')}` : '; [DEFAULT] flavors names none';
  const broken = problems.length ? ` (and has problems: ${problems.join('; ')})` : '';
  throw new UsageError(`unknown flavor ${JSON.stringify(o.flavor)}${didYouMean(o.flavor, names)}${known}${broken}`);
}
