/**
 * Where a boot's time goes, for the boot benchmarks: the node's own timeline of each build (the
 * driver's `build stages` log line) read from the node's log, and the plug's moments the
 * benchmark records itself (the tap made, the plug's start and end, the port ACTIVE in Neutron). All times are ms since the epoch, one clock (the node runs in the
 * benchmark's process).
 */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../../common/log.js';
import { BUILD_STAGES_MSG, type BuildTimeline } from '../../../driver/compute/build-stages.js';
import { summarize } from './report.js';

export interface PlugMoments {
  /** The tap on its bridge, where Neutron's agent sees it (before the start, or by the plug itself). */
  tapMade?: number;
  /** The plug after the start: its begin and end (the guest end moved in, or a new pair). */
  plugStart?: number;
  plugEnd?: number;
  /** When Neutron first reported the port ACTIVE (polled every 100 ms); absent if never seen. */
  portActive?: number;
}

/** One boot as the benchmark saw it: POST sent, ACTIVE seen by the API poll. */
export interface BootSeen {
  id: string;
  posted: number;
  apiActive: number;
}

/**
 * The node's own time: from the RPC to ACTIVE recorded, less (on a Neutron network) the port's
 * allocation in Neutron's API and the wait for Neutron alone.
 */
export const NODE_OWN = "the node's own time (RPC → ACTIVE recorded, less Neutron's API and agent waits)";

export class BootStages {
  private readonly timelines = new Map<string, BuildTimeline>();
  private readonly plugs = new Map<string, PlugMoments>();

  /** A logger (info) for the node whose lines this reads; everything else it logs is dropped. */
  logger(): Logger {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString().split('\n')) this.read(line);
        done();
      },
    });
    return createLogger('bench-node', { destination: sink });
  }

  private read(line: string): void {
    if (!line.includes(BUILD_STAGES_MSG)) return;
    try {
      const rec = JSON.parse(line) as { msg?: string; build_stages?: BuildTimeline };
      if (rec.msg === BUILD_STAGES_MSG && rec.build_stages) this.timelines.set(rec.build_stages.instance, rec.build_stages);
    } catch {
      // not a JSON line of ours
    }
  }

  /** The moments of an instance's (first) port, filled in as they come. */
  plug(uuid: string): PlugMoments {
    let m = this.plugs.get(uuid);
    if (!m) this.plugs.set(uuid, (m = {}));
    return m;
  }

  /**
   * Milestones of the given boots (median ms after the POST), each boot's own timeline from the
   * node's log and the plug's moments; then what of the total is the wait for Neutron alone (from
   * when Berth had the tap on its bridge and the container running until network-vif-plugged).
   */
  rows(boots: BootSeen[], network: boolean): Array<Record<string, unknown>> {
    const spans = new Map<string, number[]>();
    const add = (name: string, v: number | undefined) => {
      if (v === undefined || !Number.isFinite(v)) return;
      spans.set(name, [...(spans.get(name) ?? []), v]);
    };
    for (const b of boots) {
      const t = this.timelines.get(b.id);
      if (!t) continue;
      const at = (s: keyof BuildTimeline['stages']) => (t.stages[s] === undefined ? undefined : t.started_at + t.stages[s]! - b.posted);
      const since = (v: number | undefined) => (v === undefined ? undefined : v - b.posted);
      const p = this.plugs.get(b.id) ?? {};
      add('RPC received (nova-api, scheduler, conductor)', at('rpc_received'));
      add('claimed (this host, then the control plane)', at('claimed'));
      if (network) {
        add('ports allocated and bound, info cache saved', at('ports_bound'));
        add('image on the host (fetched beside the ports)', at('image_ready'));
        add('tap on its bridge (Neutron can wire it)', since(p.tapMade));
        add('container started (the plug begins)', since(p.plugStart));
        add('guest plugged (veth end moved in, addresses)', since(p.plugEnd));
      }
      add('agent create returned', at('container_ready'));
      if (network) {
        add('port ACTIVE in Neutron (polled)', since(p.portActive));
        add('network-vif-plugged received', at('vif_plugged'));
      }
      add('ACTIVE recorded', at('active'));
      add('ACTIVE seen by the API poll', b.apiActive - b.posted);
      if (network && p.tapMade !== undefined && t.stages.vif_plugged !== undefined && t.stages.container_ready !== undefined) {
        const berthReady = Math.max(p.tapMade, t.started_at + t.stages.container_ready);
        const wait = Math.max(0, t.started_at + t.stages.vif_plugged - berthReady);
        add('of the total: waiting for Neutron alone (Berth done → vif-plugged)', wait);
        add('of the total: tap on bridge → network-vif-plugged (Neutron agent + notifier)', t.started_at + t.stages.vif_plugged - p.tapMade);
        add('total without the wait for Neutron alone', b.apiActive - b.posted - wait);
        // The port's look-up, creation and binding are Neutron's API at work (the node only waits).
        const portApi = t.stages.ports_bound! - t.stages.claimed!;
        add(NODE_OWN, t.stages.active! - portApi - wait);
      }
      if (!network && t.stages.active !== undefined) add(NODE_OWN, t.stages.active);
    }
    return [...spans].map(([stage, v]) => {
      const s = summarize(v);
      return { milestone: stage, n: s.n, 'median ms': s.median, 'min ms': s.min, 'max ms': s.max };
    });
  }

  /** Medians of one row of `rows`, by its name. */
  static median(rows: Array<Record<string, unknown>>, name: string): number | undefined {
    const r = rows.find((x) => x.milestone === name);
    return r ? Number(r['median ms']) : undefined;
  }
}
