import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';

/**
 * Finds places in the project's files that name a path above the repository root: a user's clone
 * has nothing there (no sibling folder of the checkout), so a file that reads or writes there
 * works only on the machine it was written on. What it recognises (this file writes its own
 * patterns so that they do not match themselves):
 * - relative paths (`../x`, `./../x`, `"$(dirname "$0")/../.."`), resolved from the file's folder,
 *   as imports, `new URL(…, import.meta.url)` and a script's own folder resolve them;
 * - `join(…)` / `resolve(…)` whose first argument is the file's folder (`import.meta.url`,
 *   `__dirname`) or the repository root (`ROOT`, `repoRoot`, `projectRoot()`), followed by
 *   literal segments;
 * - a shell variable for the root (`ROOT`, `PWD`) followed by a `..` segment;
 * - names of places that only exist beside a checkout (the `BERTH_SHARE…` variable, the `fixtures`
 *   and `docs` folders of a sibling `shared` folder).
 * Paths inside string data that is not a path (a tenant's hostile `../../etc/passwd` in a test) stay
 * below the root when resolved from a test folder, so they do not count.
 */
export interface OutsidePath {
  file: string;
  line: number;
  text: string;
  why: string;
}

/** Folders that hold no project source: dependencies, build output, state, captured data. */
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.state', 'coverage']);
const SKIP_PATHS = new Set(['test/fixtures', 'package-lock.json']);
const SOURCE = /\.(ts|js|mjs|cjs|sh|py|json|md|service|conf|ini|ya?ml)$/;
const SCRIPTS = new Set(['tools/berth', '.ci/run']);

/** The project's source, config, script and doc files, relative to `root` with `/` separators. */
export function projectFiles(root: string, dir = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir)).sort()) {
    const rel = dir ? `${dir}/${name}` : name;
    if (SKIP_DIRS.has(name) || SKIP_PATHS.has(rel)) continue;
    const st = statSync(join(root, rel));
    if (st.isDirectory()) out.push(...projectFiles(root, rel));
    else if (SOURCE.test(name) || SCRIPTS.has(rel)) out.push(rel);
  }
  return out;
}

const NAMED = /BERTH_SHARE[D]|\bshared\/(fixtures|docs)\b/g;
/** A relative path with at least one `..` segment and one slash, not the tail of a longer path. */
const RELATIVE = /(?<![\w./$}-])((?:\.\/)*\.\.(?:\/\.\.)*(?:\/[\w.@-]+)*|\.\.(?:\/[\w.@-]*)+)/g;
/** A script's own folder, `$(dirname "$0")/..` or `$(dirname "${BASH_SOURCE[0]}")/..`. */
const SCRIPT_DIR = /\$\(dirname "?\$(?:0|\{BASH_SOURCE\[0\]\})"?\)((?:\/[\w.-]+)+)/g;
/** A shell variable holding the root (scripts cd to it first), then `..`. */
const ROOT_VAR = /\$\{?(ROOT|PWD|TOP|REPO|repo|root)\}?((?:\/[\w.-]+)*\/\.\.(?:\/[\w.-]+)*)/g;
const CALL = /\b(?:join|resolve)\(/g;

/** Every place in one file's text that names a path above the root. `file` is relative to the root. */
export function outsidePaths(file: string, text: string): OutsidePath[] {
  const found: OutsidePath[] = [];
  const fileDir = posix.dirname(file) === '.' ? '' : posix.dirname(file);
  const add = (index: number, match: string, why: string): void => {
    found.push({ file, line: text.slice(0, index).split('\n').length, text: match, why });
  };
  for (const m of text.matchAll(NAMED)) add(m.index, m[0], 'names a place beside the checkout');
  for (const m of text.matchAll(RELATIVE)) {
    const path = m[1] ?? '';
    if (path.includes('/') && escapes(fileDir, path.split('/'))) add(m.index, path, `resolves above the root from ${fileDir || '.'}/`);
  }
  for (const m of text.matchAll(SCRIPT_DIR)) {
    const path = m[1] ?? '';
    if (escapes(fileDir, path.slice(1).split('/'))) add(m.index, m[0], `the script's folder ${fileDir || '.'}/ and ${path} is above the root`);
  }
  for (const m of text.matchAll(ROOT_VAR)) {
    if (escapes('', (m[2] ?? '').slice(1).split('/'))) add(m.index, m[0], 'leaves the root the script runs in');
  }
  for (const m of text.matchAll(CALL)) {
    const args = callArguments(text, m.index + m[0].length);
    if (!args || args.length < 2) continue;
    const base = baseOf(args[0] ?? '', fileDir);
    if (base === undefined) continue;
    const segments: string[] = [];
    for (const arg of args.slice(1)) {
      const lit = /^(['"`])([^'"`$]*)\1$/.exec(arg.trim());
      if (!lit) break;
      segments.push(...(lit[2] ?? '').split('/'));
    }
    if (escapes(base, segments)) add(m.index, text.slice(m.index, m.index + 80).split('\n')[0] ?? '', 'joins a path above the root');
  }
  return found;
}

/** Where a join/resolve starts: the file's folder, the root, or undefined when it cannot be told. */
function baseOf(first: string, fileDir: string): string | undefined {
  const arg = first.trim();
  if (/import\.meta\.(url|dirname)|__dirname/.test(arg)) return fileDir;
  if (/^(ROOT|root|repoRoot|projectRoot\(\))$/.test(arg)) return '';
  return undefined;
}

/** True when `segments`, applied to the root-relative folder `from`, leave the root. */
function escapes(from: string, segments: string[]): boolean {
  let depth = from ? from.split('/').length : 0;
  for (const s of segments) {
    if (s === '..') depth -= 1;
    else if (s !== '.' && s !== '') depth += 1;
    if (depth < 0) return true;
  }
  return false;
}

/** The top-level arguments of a call whose `(` ends just before `start`, or undefined when unbalanced. */
function callArguments(text: string, start: number): string[] | undefined {
  const args: string[] = [];
  let depth = 0;
  let quote = '';
  let current = '';
  for (let i = start; i < text.length && i < start + 2000; i++) {
    const c = text[i];
    if (quote) {
      current += c;
      if (c === '\\') current += text[++i] ?? '';
      else if (c === quote) quote = '';
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      quote = c;
      current += c;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') depth += 1;
    if (c === ')' || c === ']' || c === '}') {
      if (depth === 0) {
        args.push(current);
        return args;
      }
      depth -= 1;
    }
    if (c === ',' && depth === 0) {
      args.push(current);
      current = '';
      continue;
    }
    current += c;
  }
  return undefined;
}

/** Every place in the project that names a path above `root`. */
export function projectOutsidePaths(root: string): OutsidePath[] {
  return projectFiles(root).flatMap((file) => outsidePaths(file, readFileSync(join(root, file), 'utf8')));
}
