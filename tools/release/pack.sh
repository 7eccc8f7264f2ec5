#!/usr/bin/env bash
# Builds Berth's release artifact with one command (`npm run pack`): release/berth-VERSION.tgz, an
# npm package an operator installs with `npm install --omit=dev ./berth-VERSION.tgz` (or
# `npm install -g`). It holds the compiled JavaScript of the services and the CLI, the `berth`
# command, the systemd units, the sample configuration and the docs, and depends on the production
# dependencies only, pinned by an npm-shrinkwrap.json made from package-lock.json (so an install
# gets exactly the tested versions, from the registry or from a local npm cache with --offline).
# Never in it: tests, benchmarks, sources, and the development scripts of tools/dev/ (which
# install packages): a node installed from it has no `berth dev`.
#   BERTH_RELEASE_DIR  where the tarball goes (default: release/ in the checkout)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=${BERTH_RELEASE_DIR:-$root/release}
stage=$(mktemp -d /tmp/berth-pack.XXXXXX)
trap 'rm -rf "$stage"' EXIT

# Compiled straight into the package (the checkout's own dist/ is left as it is), then what an
# installed node does not run is taken out: benchmarks, development tools, the doc generator and
# the in-process test stack.
npx tsc -p tsconfig.build.json --outDir "$stage/dist"
rm -rf "$stage/dist/tools/bench" "$stage/dist/tools/dev" "$stage"/dist/tools/gen-docs.* "$stage"/dist/tools/lib/stack.*
mkdir -p "$stage/tools/systemd" "$stage/conf" "$stage/docs" "$out"
cp tools/berth "$stage/tools/berth"
cp tools/systemd/* "$stage/tools/systemd/"
cp conf/berth.conf.sample "$stage/conf/"
cp README.md "$stage/"
cp docs/*.md "$stage/docs/"
node tools/release/manifest.mjs "$root" "$stage"
(cd "$stage" && npm pack --silent --pack-destination "$out" >/dev/null)
version=$(node -p 'require("./package.json").version')
echo "$out/berth-$version.tgz"
