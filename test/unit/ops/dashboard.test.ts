import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAgentMetrics } from '../../../agent/agent-metrics.js';
import { DriverMetrics } from '../../../driver/metrics.js';
import { createImageServiceMetrics } from '../../../glance-bridge/app.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { ROOT } from '../../support/fixtures.js';

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
  datasource?: { uid: string };
}

/** Every metric family a registry exposes, with its type, from the `# TYPE` lines of a scrape. */
function families(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** The Grafana dashboard in docs/grafana/ uses only metrics the services really export. */
describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'docs', 'grafana', 'berth-dashboard.json'), 'utf8')) as {
    __inputs: { name: string; type: string }[];
    panels: Panel[];
    templating: { list: { query: string }[] };
  };
  const exprs = [...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dashboard.templating.list.map((t) => t.query)];

  it('is importable: a Prometheus data source input, panels with targets on it', () => {
    assert.deepEqual(
      dashboard.__inputs.map((i) => [i.name, i.type]),
      [['DS_PROMETHEUS', 'datasource']],
    );
    const graphs = dashboard.panels.filter((p) => p.type !== 'row');
    assert.ok(graphs.length >= 10);
    for (const p of graphs) {
      assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', p.title);
      assert.ok(p.targets?.length, p.title);
    }
    for (const want of [/capacity/i, /builds/i, /failures/i, /import throughput/i, /rpc latency/i]) {
      assert.ok(
        graphs.some((p) => want.test(p.title)),
        String(want),
      );
    }
  });

  it('names only metrics that berth-compute, berth-agent and berth-images export', async () => {
    const driver = new DriverMetrics(() => Promise.resolve([[{ vm_state: 'active' }, 1]]));
    driver.watchCapacity(() => Promise.resolve({ resources: { VCPU: { capacity: 8, used: 1 } } }));
    const scraped = new Map<string, string>();
    for (const text of [
      await driver.registry.render(),
      await createAgentMetrics(new FakeContainerRuntime()).registry.render(),
      await createImageServiceMetrics().registry.render(),
    ]) {
      for (const [name, type] of families(text)) scraped.set(name, type);
    }
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:berth|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!)));
    assert.ok(used.size >= 15, [...used].join(', '));
    const missing = [...used].filter((name) => {
      if (scraped.has(name)) return false;
      const base = name.replace(/_(bucket|sum|count)$/, '');
      return !(base !== name && ['histogram', 'summary'].includes(scraped.get(base) ?? ''));
    });
    assert.deepEqual(missing, [], `not exported: ${missing.join(', ')}`);
  });
});
