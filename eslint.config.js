// @ts-check
/**
 * ESLint flat config (ESLint 10).
 *
 * - typescript-eslint "recommended" (non-type-checked, for speed), relaxed for tests.
 * - import-x with the TypeScript resolver (resolver-next API: createTypeScriptImportResolver),
 *   so `./x.js` specifiers resolve to `./x.ts` like NodeNext does.
 * - Component boundaries (import-x/no-restricted-paths):
 *     driver/        -> may use agent/ and glance-bridge/ only through their client/ modules
 *     agent/         -> no driver/; glance-bridge/ only through glance-bridge/client/
 *     glance-bridge/ -> no driver/, no agent/
 *     common/, conf/ -> nothing from driver/, agent/, glance-bridge/, tools/
 *     product code   -> nothing from test/
 *     agent/client/, glance-bridge/client/ -> self-contained (no component internals), so
 *                       importing a client never drags a component's internals in
 * - Inside glance-bridge/, layers by capability (docs/architecture.md, "Where each capability lives"):
 *     registry/ (registry client)               -> none of the bridge's other folders
 *     metadefs/ (the metadata definitions catalog) -> nothing above it
 *     store/                                    -> registry/ only (and client/types, errors.ts)
 *     policy/                                   -> store/
 *     archive/                                  -> store/
 *     import/                                   -> registry/, store/, policy/, archive/
 *     api/, registry-endpoint/ (the two HTTP faces) -> anything below; never each other
 *     app.ts, main.ts, gc.ts, keystone-setup.ts (the service's wiring at the root) -> imported by no folder
 * - agent/runtime/ reaches host networking only through agent/network/host-networking.ts; agent/network/ never imports the runtime.
 * - No import cycles (import-x/no-cycle).
 */
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const COMPONENTS = ['./driver', './agent', './glance-bridge'];

const BRIDGE_FACES = ['./glance-bridge/api', './glance-bridge/registry-endpoint'];
const BRIDGE_BELOW_FACES = [
  './glance-bridge/import',
  './glance-bridge/archive',
  './glance-bridge/store',
  './glance-bridge/policy',
  './glance-bridge/registry',
  './glance-bridge/metadefs',
];
const BRIDGE_WIRING = ['./glance-bridge/app.ts', './glance-bridge/main.ts', './glance-bridge/gc.ts', './glance-bridge/keystone-setup.ts'];

const zones = [
  // driver: only the agent's and the image service's client modules.
  { target: './driver', from: './agent', except: ['./client'], message: 'driver/ may import agent/ only through agent/client/.' },
  { target: './driver', from: './glance-bridge', except: ['./client'], message: 'driver/ may import glance-bridge/ only through glance-bridge/client/.' },
  // agent: never the driver; the image service only through its client.
  { target: './agent', from: './driver', message: 'agent/ must not import driver/.' },
  { target: './agent', from: './glance-bridge', except: ['./client'], message: 'agent/ may import glance-bridge/ only through glance-bridge/client/.' },
  // glance-bridge: neither the driver nor the agent.
  { target: './glance-bridge', from: ['./driver', './agent'], message: 'glance-bridge/ must not import driver/ or agent/.' },
  // Shared layers depend on nothing above them.
  { target: ['./common', './conf'], from: [...COMPONENTS, './tools'], message: 'common/ and conf/ must not import driver/, agent/, glance-bridge/ or tools/.' },
  // Client modules are what other components link against: keep them free of their component's internals.
  { target: './agent/client', from: './agent', except: ['./client'], message: 'agent/client/ must not import agent/ internals.' },
  {
    target: './glance-bridge/client',
    from: './glance-bridge',
    except: ['./client'],
    message: 'glance-bridge/client/ must not import glance-bridge/ internals.',
  },
  // glance-bridge/ inside: capabilities below, the two HTTP faces (api/, registry-endpoint/) on top, wiring at the root.
  {
    target: BRIDGE_BELOW_FACES,
    from: BRIDGE_FACES,
    message:
      'glance-bridge: import/, archive/, store/, policy/, registry/ and metadefs/ sit below the HTTP faces and must not import api/ or registry-endpoint/.',
  },
  {
    target: './glance-bridge/api',
    from: './glance-bridge/registry-endpoint',
    message: 'glance-bridge/api/ must not import registry-endpoint/: what both HTTP faces share belongs below them (policy/, store/).',
  },
  {
    target: './glance-bridge/registry-endpoint',
    from: './glance-bridge/api',
    message: 'glance-bridge/registry-endpoint/ must not import api/: what both HTTP faces share belongs below them (policy/, store/).',
  },
  {
    target: ['./glance-bridge/archive', './glance-bridge/policy', './glance-bridge/store', './glance-bridge/registry'],
    from: './glance-bridge/import',
    message:
      'glance-bridge: only the HTTP faces and the wiring may import import/ (the importer and uploads); archive/, policy/, store/ and registry/ sit below it.',
  },
  {
    target: ['./glance-bridge/policy', './glance-bridge/store', './glance-bridge/registry'],
    from: './glance-bridge/archive',
    message: 'glance-bridge: policy/, store/ and registry/ must not import archive/ (docker-archive building sits above the store).',
  },
  {
    target: ['./glance-bridge/archive', './glance-bridge/store', './glance-bridge/registry'],
    from: './glance-bridge/policy',
    message: 'glance-bridge: archive/, store/ and registry/ must not import policy/ (access, quotas and the Glance policy sit above the store).',
  },
  { target: './glance-bridge/registry', from: './glance-bridge/store', message: 'glance-bridge/registry/ (the registry client) must not import store/.' },
  {
    target: [...BRIDGE_BELOW_FACES, ...BRIDGE_FACES],
    from: BRIDGE_WIRING,
    message: 'glance-bridge: the wiring at the root (app.ts, main.ts, gc.ts, keystone-setup.ts) is imported by no folder of the bridge.',
  },
  // agent/ networking: the runtime holds a HostNetworking (agent/network/host-networking.ts) and nothing else of it; networking never calls into the runtime.
  {
    target: './agent/runtime',
    from: ['./agent/network/docker-networks.ts', './agent/network/docker-plugs.ts', './agent/network/veth.ts'],
    message: 'agent/runtime/ reaches host networking only through agent/network/host-networking.ts (HostNetworking).',
  },
  {
    target: './agent/network',
    from: ['./agent/runtime/docker.ts', './agent/runtime/docker-images.ts', './agent/runtime/docker-create-body.ts'],
    message:
      'agent/network/ must not import the Docker runtime (agent/runtime/docker.ts and its images and create-body parts): it reads containers through runtime/docker-inspect.ts itself.',
  },
  // Product code never links test code.
  { target: [...COMPONENTS, './common', './conf', './tools'], from: './test', message: 'Product code must not import test/.' },
];

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.state/**'] },

  // @eslint/js is not a dependency (ESLint 10 no longer ships it), so the core rules that matter
  // for TypeScript are listed below; tseslint's recommended set brings prefer-const, no-var etc.
  tseslint.configs.recommended,

  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
    },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json', alwaysTryTypes: true })],
    },
    rules: {
      'no-debugger': 'error',
      'no-cond-assign': 'error',
      'no-constant-binary-expression': 'error',
      'no-empty': ['error', { allowEmptyCatch: true }],
      'no-self-assign': 'error',
      'no-unsafe-finally': 'error',
      'no-useless-catch': 'error',
      'no-async-promise-executor': 'error',
      'no-case-declarations': 'error',
      'no-sparse-arrays': 'error',
      'no-irregular-whitespace': 'error',
      'no-useless-escape': 'error',

      'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // `_`-prefixed names are deliberately unused (callbacks, destructuring holes).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },

  // Tests, fakes and harnesses: assertions and stubs lean on these.
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-expressions': 'off',
      '@typescript-eslint/no-empty-function': 'off',
    },
  },

  // Plain JS at the root (this file): Node globals.
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
