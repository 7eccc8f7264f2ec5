/**
 * Import benchmark (issue 5): a locally built image of ~400 MB in 8 incompressible layers, pushed
 * to the loopback registry, imported by Berth's importer (its own process, a fresh store each
 * round, with and without the layer scanner) against `skopeo copy docker://… oci:…` and against
 * `docker pull` (after `docker rmi`), alternating within each round. Then a second image sharing
 * 7 of the 8 layers (bytes the registry client receives vs. the new layer), and the importer's
 * peak RSS while importing a ~1 GB image. Last, the lower bound this machine sets: the CPU time of
 * what every import must compute and of a plain download of the same blobs, over its cores
 * (lib/import-floor.ts).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot, SERVICE_ENV } from '../lib/paths.js';
import { compiledCommand, type NodeCommand } from './lib/compiled.js';
import { childrenCpuMs, downloadCpu, processCpuMs, type RequiredCpu } from './lib/import-floor.js';
import { buildAndPush, DOCKER_CLI, dockerRmi, fetchManifest, removeFromRegistry, timed, writeContext } from './lib/bench-images.js';
import { percentile, printResult, printTable } from './lib/report.js';
import { runBench } from './lib/run.js';

const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
const LAYER_MB = Number(process.env.BENCH_LAYER_MB ?? 50);
const BIG_LAYER_MB = Number(process.env.BENCH_BIG_LAYER_MB ?? 128);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DEV_DIR = process.env.BERTH_DEV_DIR ?? '/var/lib/berth-dev';
const REGISTRY_STORAGE = join(DEV_DIR, 'registry');
const SKOPEO = '/usr/bin/skopeo';
const TARGETS = { vsSkopeo: 1.0, vsDockerPull: 1 / 3, sharedFetch: 1.05, rssMb: 200 };
const run = promisify(execFile);
const ROOT = projectRoot();

interface ChildLine {
  ref?: string;
  ms?: number;
  bytesFetched?: number;
  hwmKb?: number;
  idleHwmKb?: number;
  required?: RequiredCpu;
}

let command: Promise<NodeCommand> | undefined;
/** The importer child, compiled once per run, as installed services run (compiled.ts). */
const importerCommand = (): Promise<NodeCommand> => (command ??= compiledCommand('tools/bench/lib/import-child', 'berth-bench-import-dist'));

/** Runs the importer process over a fresh store; one result line per reference. */
async function importInChild(work: string, scan: boolean, refs: string[], costs = false): Promise<ChildLine[]> {
  const state = mkdtempSync(join(work, 'store-'));
  try {
    const mode = `${scan ? 'scan' : 'noscan'}${costs ? '+costs' : ''}`;
    // The environment the image service runs in (berth-images.service, berth up).
    const { stdout } = await run(process.execPath, [...(await importerCommand()).args, state, REGISTRY, mode, ...refs], {
      cwd: ROOT,
      timeout: 15 * 60_000,
      maxBuffer: 1024 * 1024,
      env: { ...process.env, ...SERVICE_ENV },
    });
    return stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ChildLine);
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => percentile(xs, 50);

/** The local registry's pid (tools/dev/services.sh writes it), to count its CPU; null if unknown. */
function registryPid(): number | null {
  try {
    const pid = Number(readFileSync(join(DEV_DIR, 'registry.pid'), 'utf8').trim());
    return Number.isInteger(pid) && Number.isFinite(processCpuMs(pid)) ? pid : null;
  } catch {
    return null;
  }
}

runBench('import-throughput', 60 * 60_000, async (b) => {
  const hasSkopeo = existsSync(SKOPEO);
  if (!hasSkopeo) process.stdout.write('NOTE: skopeo is not installed (apt-get install -y skopeo); only docker pull is compared.\n');
  const repo = `berth/bench-import-${randomBytes(4).toString('hex')}`;
  const ref = (tag: string) => `${REGISTRY}/${repo}:${tag}`;
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-import-'));
  b.cleanup(async () => rmSync(work, { recursive: true, force: true }));
  b.cleanup(() => removeFromRegistry(REGISTRY, repo, ['a', 'b', 'big'], existsSync(REGISTRY_STORAGE) ? REGISTRY_STORAGE : null));
  b.cleanup(async () => {
    for (const tag of ['a', 'b', 'big']) await dockerRmi(ref(tag));
  });

  b.log(`importer runs as: ${(await importerCommand()).runtime}`);
  b.log(`building and pushing ${repo}: a (8 × ${LAYER_MB} MB), b (7 layers of a + 1 new), big (8 × ${BIG_LAYER_MB} MB)`);
  const shared = await writeContext(
    join(work, 'a'),
    Array.from({ length: 8 }, () => ({ mb: LAYER_MB })),
  );
  await writeContext(join(work, 'b'), [...shared.slice(0, 7).map((p) => ({ shared: p })), { mb: LAYER_MB }]);
  await writeContext(
    join(work, 'big'),
    Array.from({ length: 8 }, () => ({ mb: BIG_LAYER_MB })),
  );
  for (const tag of ['a', 'b', 'big']) {
    await buildAndPush(join(work, tag), ref(tag));
    rmSync(join(work, tag), { recursive: true, force: true });
  }
  // dockerd must not hold the layers when docker pull is measured.
  for (const tag of ['a', 'b', 'big']) await dockerRmi(ref(tag));
  const a = await fetchManifest(REGISTRY, repo, 'a');
  const second = await fetchManifest(REGISTRY, repo, 'b');
  const imageMb = (a.manifest.config.size + a.manifest.layers.reduce((s, l) => s + l.size, 0)) / 1024 / 1024;

  const regPid = registryPid();
  const cpu: Record<string, number[]> = { sha256: [], md5: [], sha512: [], gunzip: [], curl: [], registry: [], skopeo: [] };
  const times: Record<string, number[]> = { berth: [], 'berth, no scanner': [], ...(hasSkopeo ? { 'skopeo copy': [] } : {}), 'docker pull': [] };
  // Page cache: one untimed import first, so every contender reads the registry's files warm.
  await importInChild(work, true, [`docker://${ref('a')}`]);
  for (let round = 1; round <= ROUNDS; round++) {
    b.log(`round ${round}/${ROUNDS}`);
    const berth = (await importInChild(work, true, [`docker://${ref('a')}`], true))[1]!;
    times.berth!.push(berth.ms!);
    for (const [k, v] of Object.entries(berth.required!)) cpu[k]!.push(v);
    times['berth, no scanner']!.push((await importInChild(work, false, [`docker://${ref('a')}`]))[1]!.ms!);
    if (hasSkopeo) {
      const dest = join(work, `oci-${round}`);
      const skopeoBefore = childrenCpuMs();
      times['skopeo copy']!.push(
        await timed(() => run(SKOPEO, ['copy', '-q', '--src-tls-verify=false', `docker://${ref('a')}`, `oci:${dest}:a`], { timeout: 15 * 60_000 })),
      );
      cpu.skopeo!.push(childrenCpuMs() - skopeoBefore);
      rmSync(dest, { recursive: true, force: true });
    }
    const downloads = join(work, `curl-${round}`);
    mkdirSync(downloads);
    const fetched = await downloadCpu(REGISTRY, repo, [a.manifest.config.digest, ...a.manifest.layers.map((l) => l.digest)], downloads, regPid);
    rmSync(downloads, { recursive: true, force: true });
    cpu.curl!.push(fetched.curl);
    cpu.registry!.push(fetched.registry);
    times['docker pull']!.push(await timed(() => run(DOCKER_CLI, ['pull', '-q', ref('a')], { timeout: 15 * 60_000 })));
    await dockerRmi(ref('a'));
  }

  b.log('shared layers: a, then b into the same store');
  const sharedRun = await importInChild(work, true, [`docker://${ref('a')}`, `docker://${ref('b')}`]);
  const newLayer = second.manifest.layers[7]!.size;
  const fetchedForB = sharedRun[2]!.bytesFetched!;

  b.log('memory: the ~1 GB image');
  const bigRun = await importInChild(work, true, [`docker://${ref('big')}`]);
  const rssMb = bigRun[1]!.hwmKb! / 1024;

  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  printTable(
    `import of ${imageMb.toFixed(0)} MB in 8 layers, ${ROUNDS} rounds (median)`,
    Object.entries(times).map(([who, v]) => ({
      who,
      median_s: median(v) / 1000,
      min_s: Math.min(...v) / 1000,
      max_s: Math.max(...v) / 1000,
      'MB/s': imageMb / (median(v) / 1000),
    })),
  );
  printTable('second image sharing 7 of 8 layers, and memory', [
    { figure: 'bytes fetched for the second image', value: fetchedForB },
    { figure: 'its new layer (compressed)', value: newLayer },
    { figure: 'importer idle peak RSS, MB', value: bigRun[0]!.idleHwmKb! / 1024 },
    { figure: `importer peak RSS importing ${(bigRun[1]!.bytesFetched! / 1024 / 1024).toFixed(0)} MB, MB`, value: rssMb },
  ]);
  const scannerCost = med.berth! / med['berth, no scanner']!;
  process.stdout.write(`\nlayer scanner: import time with/without = ${scannerCost.toFixed(2)}×\n`);
  // The lower bound: on `cores` cores, no import can take less wall time than the CPU time it
  // cannot avoid (plus what the registry spends serving it) spread perfectly over all of them.
  const cores = availableParallelism();
  const must = (
    [
      ['sha256', 'sha256 of every blob (digest check)'],
      ['md5', 'md5 of the blobs (Glance checksum)'],
      ['sha512', 'sha512 of the blobs (os_hash_value)'],
      ['gunzip', 'gunzip of the layers (scanner)'],
      ['curl', 'curl downloading the blobs to files'],
      ['registry', 'registry serving them'],
    ] as const
  ).map(([key, work]) => ({ work, ms: median(cpu[key]!) }));
  // The registry's CPU is unknown (NaN) when its pid is: counted as none, so the bound stays one.
  const floor = must.reduce((sum, m) => sum + (Number.isFinite(m.ms) ? m.ms : 0), 0) / cores;
  printTable(`CPU every import of this image must spend here (s, median of ${ROUNDS})`, [
    ...must.map((m) => ({ work: m.work, cpu_s: m.ms / 1000 })),
    { work: `sum over ${cores} cores: lower bound`, cpu_s: floor / 1000 },
    ...(hasSkopeo ? [{ work: 'for comparison: skopeo copy, its own CPU', cpu_s: median(cpu.skopeo!) / 1000 }] : []),
  ]);
  if (hasSkopeo)
    process.stdout.write(
      `\nlower bound on this machine: ${(floor / med['skopeo copy']!).toFixed(2)}× skopeo's time, ${(floor / med['docker pull']!).toFixed(2)}× docker pull's\n`,
    );
  return printResult('import-throughput', [
    ...(hasSkopeo ? [{ metric: 'time_vs_skopeo', value: med.berth! / med['skopeo copy']!, target: TARGETS.vsSkopeo }] : []),
    { metric: 'time_vs_docker_pull', value: med.berth! / med['docker pull']!, target: TARGETS.vsDockerPull },
    { metric: 'shared_fetch_vs_new_layer', value: fetchedForB / newLayer, target: TARGETS.sharedFetch },
    { metric: 'rss_mb', value: rssMb, target: TARGETS.rssMb },
  ]);
});
