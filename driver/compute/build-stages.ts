import type { Logger } from '../../common/log.js';

/**
 * The stages of a build, in the order they usually end: the RPC received, the claim (this host's
 * resources and the control plane's), the ports allocated and bound (nova mode with Neutron), the
 * image on the host, the container created, started and plugged by the agent, the last
 * network-vif-plugged event received, and `active` recorded.
 */
export type BuildStage = 'rpc_received' | 'claimed' | 'ports_bound' | 'image_ready' | 'container_ready' | 'vif_plugged' | 'active';

/** One build's stages as logged: when it began (ms since the epoch) and each stage's end, in ms after that. */
export interface BuildTimeline {
  instance: string;
  outcome: 'active' | 'error' | 'abandoned';
  started_at: number;
  stages: Partial<Record<BuildStage, number>>;
}

/** The log message of a build's timeline (one line per build, at info). */
export const BUILD_STAGES_MSG = 'build stages';

/**
 * Per-stage timestamps of the builds running on this node, logged once each build ends (one
 * `build stages` line: what an operator, and the boot benchmark, reads to see where a boot's
 * time goes). Only builds in progress are held; a stage of a build not begun is ignored.
 */
export class BuildStages {
  private readonly open = new Map<string, BuildTimeline>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The RPC of a build was received: its timeline starts. */
  begin(uuid: string): void {
    this.open.set(uuid, { instance: uuid, outcome: 'abandoned', started_at: this.now(), stages: { rpc_received: 0 } });
  }

  /** Runs a build with its timeline: begun now, logged when it returns (`abandoned` unless ended before). */
  async timed(uuid: string, build: () => Promise<void>): Promise<void> {
    this.begin(uuid);
    try {
      await build();
    } finally {
      this.end(uuid, 'abandoned');
    }
  }

  /** A stage of a build in progress ended (the last end counts: the last port's event). */
  mark(uuid: string, stage: BuildStage): void {
    const t = this.open.get(uuid);
    if (t) t.stages[stage] = this.now() - t.started_at;
  }

  /** The build ended: its timeline is logged and dropped. */
  end(uuid: string, outcome: BuildTimeline['outcome']): BuildTimeline | null {
    const t = this.open.get(uuid);
    if (!t) return null;
    this.open.delete(uuid);
    t.outcome = outcome;
    this.log.info({ build_stages: t, instance: uuid }, BUILD_STAGES_MSG);
    return t;
  }

  /** Builds whose timeline is open (for tests). */
  get size(): number {
    return this.open.size;
  }
}
