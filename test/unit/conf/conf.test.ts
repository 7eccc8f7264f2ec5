import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { IniSyntaxError, parseIni } from '../../../conf/ini.js';
import { ConfigError, defaultConfigFiles, loadConfig } from '../../../conf/load.js';
import { schema, type OptionSpec } from '../../../conf/options.js';
import { renderReference, renderSample } from '../../../conf/sample.js';

const sections = schema as unknown as Record<string, Record<string, OptionSpec>>;

/** Runs loadConfig expecting a ConfigError; returns its problems. */
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.message, err.problems.join('\n'));
    return err.problems;
  }
  assert.fail('expected loadConfig to throw ConfigError');
}

describe('conf', () => {
  let dir: string;
  let n = 0;
  /** Writes an INI file under a per-suite temp dir and returns its path. */
  const write = (text: string, name = `berth-${++n}.conf`): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-conf-test-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('parseIni', () => {
    it('reads sections, key = value and key: value, skipping comments and blank lines', () => {
      const entries = parseIni('# comment\n; also a comment\n\n[DEFAULT]\n  debug = true  \nhost: node-1\n[agent]\nurl = http://h:1/x?a=b\r\n');
      assert.deepEqual(entries, [
        { section: 'DEFAULT', key: 'debug', value: 'true', line: 5 },
        { section: 'DEFAULT', key: 'host', value: 'node-1', line: 6 },
        { section: 'agent', key: 'url', value: 'http://h:1/x?a=b', line: 8 },
      ]);
    });

    it('keeps everything after the first separator as the value, and allows empty values', () => {
      assert.deepEqual(
        parseIni('[s]\na = b = c\nempty =\n').map((e) => [e.key, e.value]),
        [
          ['a', 'b = c'],
          ['empty', ''],
        ],
      );
    });

    it('rejects a line that is neither a section nor an option, naming the line', () => {
      assert.throws(
        () => parseIni('[s]\na = 1\nnonsense\n'),
        (e: unknown) => e instanceof IniSyntaxError && e.line === 3 && /^line 3: expected "key = value" or "\[section\]", got "nonsense"$/.test(e.message),
      );
      assert.throws(
        () => parseIni('[s]\n= 1\n'),
        (e: unknown) => e instanceof IniSyntaxError && e.line === 2,
      );
    });

    it('rejects an option outside any section', () => {
      assert.throws(
        () => parseIni('debug = true\n'),
        (e: unknown) => e instanceof IniSyntaxError && e.line === 1 && /option outside any \[section\]/.test(e.message),
      );
    });
  });

  describe('loadConfig', () => {
    it('loads every default when given no files and no environment', () => {
      const cfg = loadConfig({ files: [], env: {} });
      assert.deepEqual(Object.keys(cfg).sort(), Object.keys(schema).sort());
      assert.equal(cfg.DEFAULT.host, hostname(), 'empty host defaults to the machine host name');
      assert.equal(cfg.DEFAULT.state_path, '/var/lib/berth');
      assert.equal(cfg.DEFAULT.transport_url, 'rabbit://guest:guest@127.0.0.1:5672/');
      assert.equal(cfg.DEFAULT.debug, false);
      assert.equal(cfg.DEFAULT.max_concurrent_builds, 10);
      assert.equal(cfg.notifications.driver, 'messagingv2');
      assert.deepEqual(cfg.registry.insecure_hosts, ['127.0.0.1:5000', 'localhost:5000']);
      // Every other option is its declared default, with $state_path expanded.
      const got = cfg as unknown as Record<string, Record<string, unknown>>;
      for (const [section, options] of Object.entries(sections)) {
        assert.deepEqual(Object.keys(got[section]!).sort(), Object.keys(options).sort(), `[${section}] keys`);
        for (const [key, spec] of Object.entries(options)) {
          if (section === 'DEFAULT' && key === 'host') continue;
          const expected = typeof spec.default === 'string' ? spec.default.replace('$state_path', '/var/lib/berth') : spec.default;
          assert.deepEqual(got[section]![key], expected, `[${section}] ${key}`);
        }
      }
    });

    it('lets an INI file override defaults, converting each type', () => {
      const file = write(
        [
          '[DEFAULT]',
          'host = compute-7',
          'debug = yes',
          'max_concurrent_builds = 3',
          'transport_url = rabbit://u:p@mq:5672/nova',
          '[registry]',
          'insecure_hosts = reg.local:5000, , other:80',
          '[notifications]',
          'notification_format = both',
          '',
        ].join('\n'),
      );
      const cfg = loadConfig({ files: [file], env: {} });
      assert.equal(cfg.DEFAULT.host, 'compute-7');
      assert.equal(cfg.DEFAULT.debug, true);
      assert.equal(cfg.DEFAULT.max_concurrent_builds, 3);
      assert.equal(cfg.DEFAULT.transport_url, 'rabbit://u:p@mq:5672/nova');
      assert.deepEqual(cfg.registry.insecure_hosts, ['reg.local:5000', 'other:80']);
      assert.equal(cfg.notifications.notification_format, 'both');
      assert.equal(cfg.agent.request_timeout, 120, 'options not in the file keep their defaults');
    });

    it('lets later files win over earlier ones', () => {
      const a = write('[DEFAULT]\nhost = a\ndebug = true\n');
      const b = write('[DEFAULT]\nhost = b\n');
      const cfg = loadConfig({ files: [a, b], env: {} });
      assert.equal(cfg.DEFAULT.host, 'b');
      assert.equal(cfg.DEFAULT.debug, true);
    });

    it('interpolates $state_path and ${state_path} from [DEFAULT], leaving unknown references alone', () => {
      const file = write(
        ['[DEFAULT]', 'state_path = /srv/berth', '[image_store]', 'blob_path = ${state_path}/b', 'default_project = $no_such_option', ''].join('\n'),
      );
      const cfg = loadConfig({ files: [file], env: {} });
      assert.equal(cfg.database.connection, 'sqlite:////srv/berth/driver.sqlite', 'a default that refers to $state_path');
      assert.equal(cfg.image_store.connection, 'sqlite:////srv/berth/images.sqlite');
      assert.equal(cfg.image_store.blob_path, '/srv/berth/b', 'a file value in the ${...} form');
      assert.equal(cfg.image_store.default_project, '$no_such_option');
    });

    it('takes BERTH__<SECTION>__<KEY> from the environment over files', () => {
      const file = write('[database]\nconnection = sqlite:///from-file.sqlite\n[DEFAULT]\ndebug = false\n');
      const cfg = loadConfig({
        files: [file],
        env: { BERTH__DATABASE__CONNECTION: 'postgres://berth:pw@db/berth', BERTH__DEFAULT__DEBUG: 'on', PATH: '/bin' },
      });
      assert.equal(cfg.database.connection, 'postgres://berth:pw@db/berth');
      assert.equal(cfg.DEFAULT.debug, true);
    });

    it('interpolates $state_path in environment values too', () => {
      const cfg = loadConfig({ env: { BERTH__DEFAULT__STATE_PATH: '/data', BERTH__DATABASE__CONNECTION: 'sqlite:///$state_path/x.db' } });
      assert.equal(cfg.database.connection, 'sqlite:////data/x.db');
    });

    it('names the file, section and key of each kind of bad value', () => {
      const cases: Array<[string, RegExp]> = [
        ['[cinder]\nfoo = 1\n', /^FILE: \[cinder\] foo: unknown section \(line 2\)$/],
        ['[DEFAULT]\n\nbogus = 1\n', /^FILE: \[DEFAULT\] bogus: unknown option \(line 3\)$/],
        ['[DEFAULT]\nmax_concurrent_builds = ten\n', /^FILE: \[DEFAULT\] max_concurrent_builds: expected an integer, got "ten"$/],
        ['[DEFAULT]\nmax_concurrent_builds = 1.5\n', /^FILE: \[DEFAULT\] max_concurrent_builds: expected an integer, got "1.5"$/],
        ['[DEFAULT]\nmax_concurrent_builds = 0\n', /^FILE: \[DEFAULT\] max_concurrent_builds: 0 is below the minimum 1$/],
        ['[agent]\nrequest_timeout = 3601\n', /^FILE: \[agent\] request_timeout: 3601 is above the maximum 3600$/],
        ['[DEFAULT]\ndebug = maybe\n', /^FILE: \[DEFAULT\] debug: expected true or false, got "maybe"$/],
        ['[notifications]\ndriver = kafka\n', /^FILE: \[notifications\] driver: expected one of messagingv2, messaging, noop, got "kafka"$/],
        ['[agent]\nurl = not a url\n', /^FILE: \[agent\] url: not a URL: "not a url"$/],
        ['[DEFAULT]\nthis line is wrong\n', /^FILE: line 2: expected "key = value" or "\[section\]", got "this line is wrong"$/],
        ['debug = true\n', /^FILE: line 1: option outside any \[section\]$/],
      ];
      for (const [text, pattern] of cases) {
        const file = write(text);
        const problems = problemsOf(() => loadConfig({ files: [file], env: {} }));
        assert.equal(problems.length, 1, `${JSON.stringify(text)} -> ${JSON.stringify(problems)}`);
        assert.match(problems[0]!, new RegExp(pattern.source.replace('FILE', file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))), JSON.stringify(text));
      }
    });

    it('names an unreadable file', () => {
      const missing = join(dir, 'does-not-exist.conf');
      assert.deepEqual(
        problemsOf(() => loadConfig({ files: [missing], env: {} })),
        [`${missing}: cannot read: ENOENT`],
      );
    });

    it('reports every problem at once, across files and the environment', () => {
      const bad = write(
        [
          '[DEFAULT]',
          'max_concurrent_builds = 0',
          'debug = maybe',
          'no_such = 1',
          '[cinder]',
          'x = 1',
          '[notifications]',
          'driver = kafka',
          '[agent]',
          'url = not a url',
          'request_timeout = soon',
          '',
        ].join('\n'),
      );
      const broken = write('[DEFAULT]\nthis line is wrong\n');
      const problems = problemsOf(() =>
        loadConfig({
          files: [bad, broken],
          env: { BERTH__NOVA__FOO: '1', BERTH__DOCKER__STOP_TIMEOUT: '-1' },
        }),
      );
      const expected = [
        `${bad}: [DEFAULT] no_such: unknown option (line 4)`,
        `${bad}: [cinder] x: unknown section (line 6)`,
        `${broken}: line 2: expected "key = value" or "[section]", got "this line is wrong"`,
        'environment: BERTH__NOVA__FOO: no such option',
        `${bad}: [DEFAULT] debug: expected true or false, got "maybe"`,
        `${bad}: [DEFAULT] max_concurrent_builds: 0 is below the minimum 1`,
        `${bad}: [agent] request_timeout: expected an integer, got "soon"`,
        `${bad}: [agent] url: not a URL: "not a url"`,
        'environment BERTH__DOCKER__STOP_TIMEOUT: [docker] stop_timeout: -1 is below the minimum 0',
        `${bad}: [notifications] driver: expected one of messagingv2, messaging, noop, got "kafka"`,
      ];
      assert.deepEqual([...problems].sort(), [...expected].sort());
    });

    it('returns a frozen config', () => {
      const cfg = loadConfig({ env: {} });
      assert.ok(Object.isFrozen(cfg));
      for (const section of Object.values(cfg)) assert.ok(Object.isFrozen(section));
      assert.throws(() => {
        (cfg as unknown as Record<string, unknown>).DEFAULT = {};
      }, TypeError);
      assert.throws(() => {
        (cfg.DEFAULT as unknown as Record<string, unknown>).debug = true;
      }, TypeError);
      assert.throws(() => {
        (cfg.database as unknown as Record<string, unknown>).extra = 1;
      }, TypeError);
    });

    it('does not share list values with the schema defaults', () => {
      const cfg = loadConfig({ env: {} });
      assert.notEqual(cfg.registry.insecure_hosts, schema.registry.insecure_hosts.default);
    });

    it('applies programmatic overrides last, without parsing them', () => {
      const file = write('[DEFAULT]\nmax_concurrent_builds = 5\n');
      const cfg = loadConfig({ files: [file], env: { BERTH__DEFAULT__MAX_CONCURRENT_BUILDS: '6' }, overrides: { DEFAULT: { max_concurrent_builds: 7 } } });
      assert.equal(cfg.DEFAULT.max_concurrent_builds, 7);
    });
  });

  describe('defaultConfigFiles', () => {
    it('takes BERTH_CONFIG as a colon-separated list', () => {
      assert.deepEqual(defaultConfigFiles({ BERTH_CONFIG: '/a.conf::/b.conf' }), ['/a.conf', '/b.conf']);
    });
  });

  describe('renderSample', () => {
    const sample = renderSample();

    it('lists every section and every option, commented out, with type and default', () => {
      for (const [section, options] of Object.entries(sections)) {
        assert.ok(sample.includes(`\n[${section}]\n`), `[${section}]`);
        for (const key of Object.keys(options)) assert.match(sample, new RegExp(`^#${key} = `, 'm'), `${section}.${key}`);
      }
      assert.match(sample, /^#host = <hostname>$/m, 'run-time defaults show their placeholder');
      assert.match(sample, /^#insecure_hosts = 127\.0\.0\.1:5000,localhost:5000$/m);
      assert.match(sample, /^# \(int \(min 1, max 1000\)\)$/m);
      assert.match(sample, /^# \(one of versioned, unversioned, both\)$/m);
      for (const line of sample.split('\n')) assert.ok(line === '' || line.startsWith('#') || /^\[\w+\]$/.test(line), `stray line ${JSON.stringify(line)}`);
    });

    it('loads, uncommented, to the defaults', () => {
      const uncommented = renderSample()
        .split('\n')
        .map((l) => l.replace(/^#(\w+ = )/, '$1'))
        .join('\n');
      const file = write(uncommented, 'uncommented.conf');
      const fromSample = loadConfig({ files: [file], env: {} }) as unknown as Record<string, Record<string, unknown>>;
      const defaults = loadConfig({ env: {} }) as unknown as Record<string, Record<string, unknown>>;
      assert.equal(fromSample.DEFAULT!.host, '<hostname>');
      assert.deepEqual({ ...fromSample, DEFAULT: { ...fromSample.DEFAULT, host: '' } }, { ...defaults, DEFAULT: { ...defaults.DEFAULT, host: '' } });
    });
  });

  describe('renderReference', () => {
    it('has a table per section with a row per option, escaping pipes', () => {
      const ref = renderReference();
      assert.ok(ref.startsWith('# Configuration reference\n'));
      for (const [section, options] of Object.entries(sections)) {
        assert.ok(ref.includes(`\n## [${section}]\n\n| option | type | default | help |\n|---|---|---|---|\n`), `[${section}]`);
        for (const key of Object.keys(options)) assert.match(ref, new RegExp(`^\\| \`${key}\` \\| `, 'm'), `${section}.${key}`);
      }
      for (const row of ref.split('\n').filter((l) => l.startsWith('| `'))) {
        assert.equal(row.replace(/\\\|/g, '').split('|').length, 6, `row has 4 cells: ${row}`);
      }
    });
  });
  describe('rules across options', () => {
    const problemsOf = (env: Record<string, string>): string[] => {
      try {
        loadConfig({ env });
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    it('nova mode needs the Placement service user, and says which options are missing', () => {
      assert.deepEqual(problemsOf({ BERTH__NOVA__CONTROL_PLANE: 'nova', BERTH__PLACEMENT__AUTH_URL: 'http://k:5000/v3' }), [
        "[nova] control_plane = nova needs [placement] username, password (the service user that manages this node's resource provider)",
        '[placement] auth_url is set but username or password is not',
      ]);
      assert.deepEqual(
        problemsOf({
          BERTH__NOVA__CONTROL_PLANE: 'nova',
          BERTH__PLACEMENT__AUTH_URL: 'http://k:5000/v3',
          BERTH__PLACEMENT__USERNAME: 'nova',
          BERTH__PLACEMENT__PASSWORD: 'x',
        }),
        [],
      );
    });
    it('refuses a noauth image store on an address others reach, unless every client is trusted', () => {
      assert.deepEqual(problemsOf({ BERTH__IMAGE_STORE__LISTEN: '0.0.0.0:9292', BERTH__IMAGE_STORE__REGISTRY_LISTEN: '10.0.0.5:5050' }), [
        '[image_store] listen = 0.0.0.0:9292 is not a loopback address, and auth_strategy = noauth lets any caller act as any project or as admin: use auth_strategy = keystone, listen on loopback, or set noauth_beyond_loopback = true on a network where every client is trusted',
        '[image_store] registry_listen = 10.0.0.5:5050 is not a loopback address, and auth_strategy = noauth lets any caller act as any project or as admin: use auth_strategy = keystone, listen on loopback, or set noauth_beyond_loopback = true on a network where every client is trusted',
      ]);
      for (const listen of ['127.0.0.1:9292', '127.0.1.1:9292', 'localhost:9292', '[::1]:9292'])
        assert.deepEqual(problemsOf({ BERTH__IMAGE_STORE__LISTEN: listen }), [], listen);
      assert.deepEqual(problemsOf({ BERTH__IMAGE_STORE__LISTEN: '0.0.0.0:9292', BERTH__IMAGE_STORE__NOAUTH_BEYOND_LOOPBACK: 'true' }), []);
      assert.deepEqual(
        problemsOf({
          BERTH__IMAGE_STORE__LISTEN: '0.0.0.0:9292',
          BERTH__IMAGE_STORE__AUTH_STRATEGY: 'keystone',
          BERTH__KEYSTONE_AUTHTOKEN__AUTH_URL: 'http://k:5000/v3',
          BERTH__KEYSTONE_AUTHTOKEN__USERNAME: 'glance',
          BERTH__KEYSTONE_AUTHTOKEN__PASSWORD: 'x',
        }),
        [],
      );
    });
    it('keystone auth for the image store needs [keystone_authtoken]', () => {
      assert.deepEqual(problemsOf({ BERTH__IMAGE_STORE__AUTH_STRATEGY: 'keystone' }), [
        '[image_store] auth_strategy = keystone needs [keystone_authtoken] auth_url, username, password',
      ]);
    });
    it('keystone auth for the agent needs [keystone_authtoken] and a role, in both keystone strategies', () => {
      assert.deepEqual(problemsOf({ BERTH__AGENT__AUTH_STRATEGY: 'token+keystone', BERTH__KEYSTONE_AUTHTOKEN__AUTH_URL: 'http://k:5000/v3' }), [
        '[agent] auth_strategy = token+keystone needs [keystone_authtoken] username, password',
        '[keystone_authtoken] auth_url is set but username or password is not',
      ]);
      const user = {
        BERTH__KEYSTONE_AUTHTOKEN__AUTH_URL: 'http://k:5000/v3',
        BERTH__KEYSTONE_AUTHTOKEN__USERNAME: 'berth',
        BERTH__KEYSTONE_AUTHTOKEN__PASSWORD: 'x',
      };
      assert.deepEqual(problemsOf({ BERTH__AGENT__AUTH_STRATEGY: 'keystone', BERTH__AGENT__KEYSTONE_ROLES: '', ...user }), [
        '[agent] auth_strategy = keystone needs at least one role in [agent] keystone_roles',
      ]);
      assert.deepEqual(problemsOf({ BERTH__AGENT__AUTH_STRATEGY: 'keystone', ...user }), []);
      assert.deepEqual(problemsOf({ BERTH__AGENT__KEYSTONE_ROLES: '' }), [], 'roles matter only with a keystone strategy');
    });
  });
});
