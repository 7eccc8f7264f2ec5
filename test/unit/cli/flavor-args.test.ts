import { strict as assert } from 'node:assert';
import { loadConfig } from '../../../conf/load.js';
import { UsageError } from '../../../tools/cli/context.js';
import { chosenFlavor } from '../../../tools/cli/commands/flavor-args.js';

describe('berth server create|resize: the flavor', () => {
  const config = loadConfig({ env: {}, overrides: { DEFAULT: { flavors: ['m1.tiny:1:512:1', 'm1.small:2:2048:20'] } } });
  const usage = (fn: () => unknown, message: RegExp) => assert.throws(fn, (err: unknown) => err instanceof UsageError && message.test(err.message));

  it('--flavor NAME resolves a flavor of [DEFAULT] flavors', () => {
    assert.deepEqual(chosenFlavor(config, { flavor: 'm1.small' }), { name: 'm1.small', vcpus: 2, memory_mb: 2048, root_gb: 20 });
  });

  it('the sizes given one by one, the disk 1 GiB when left out', () => {
    assert.deepEqual(chosenFlavor(config, { flavorVcpus: 2, flavorRam: 256 }), { vcpus: 2, memory_mb: 256, root_gb: 1 });
    assert.deepEqual(chosenFlavor(config, { flavorVcpus: 2, flavorRam: 256, flavorDisk: 5 }), { vcpus: 2, memory_mb: 256, root_gb: 5 });
  });

  it('says what is missing, unknown or given twice', () => {
    usage(() => chosenFlavor(config, {}), /give --flavor NAME, or --flavor-vcpus and --flavor-ram/);
    usage(() => chosenFlavor(config, { flavorVcpus: 1 }), /give --flavor NAME, or --flavor-vcpus and --flavor-ram/);
    usage(() => chosenFlavor(config, { flavor: 'm1.tiny', flavorRam: 64 }), /exclude each other/);
    usage(
      () => chosenFlavor(config, { flavor: 'm1.smal' }),
      /unknown flavor "m1.smal" \(did you mean m1.small\?\); \[DEFAULT\] flavors names m1.tiny, m1.small/,
    );
    usage(() => chosenFlavor(loadConfig({ env: {} }), { flavor: 'm1.tiny' }), /\[DEFAULT\] flavors names none/);
  });
});
