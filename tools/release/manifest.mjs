// The release package's package.json and npm-shrinkwrap.json, from the checkout's package.json
// and package-lock.json: production dependencies only, no scripts, an explicit `files` list.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [root, stage] = process.argv.slice(2);
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));

const manifest = {
  name: pkg.name,
  version: pkg.version,
  description: pkg.description,
  license: pkg.license,
  type: pkg.type,
  engines: pkg.engines,
  bin: { berth: 'tools/berth' },
  files: ['dist/', 'tools/berth', 'tools/systemd/', 'conf/berth.conf.sample', 'docs/', 'README.md', 'npm-shrinkwrap.json'],
  dependencies: pkg.dependencies,
};
for (const key of Object.keys(manifest)) if (manifest[key] === undefined) delete manifest[key];
writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);

// The lock's root entry rewritten for the package, and every entry a production install needs
// (entries only the development dependencies pull in are marked dev and left out).
const packages = {};
for (const [path, entry] of Object.entries(lock.packages)) {
  if (path === '') {
    packages[''] = { name: pkg.name, version: pkg.version, dependencies: pkg.dependencies, bin: manifest.bin, engines: pkg.engines };
    continue;
  }
  if (entry.dev) continue;
  packages[path] = entry;
}
writeFileSync(join(stage, 'npm-shrinkwrap.json'), `${JSON.stringify({ name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);
