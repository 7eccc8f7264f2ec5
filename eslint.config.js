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
 * - No import cycles (import-x/no-cycle).
 */
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const COMPONENTS = ['./driver', './agent', './glance-bridge'];

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
  { target: './glance-bridge/client', from: './glance-bridge', except: ['./client'], message: 'glance-bridge/client/ must not import glance-bridge/ internals.' },
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
      'import-x/resolver-next': [
        createTypeScriptImportResolver({ project: './tsconfig.json', alwaysTryTypes: true }),
      ],
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
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_',
        ignoreRestSiblings: true,
      }],
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
