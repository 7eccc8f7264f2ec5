import { mkdir, readFile, rm } from 'node:fs/promises';
import { replaceFileDurably } from '../../common/fs.js';
import { join } from 'node:path';
import type { VifSpec } from '../client/types.js';
import { agentError } from '../errors.js';
import { vifsOf } from '../runtime/docker-inspect.js';
import { LABEL_NETWORK } from '../runtime/types.js';

/** A VIF of a container with the guest interface it is plugged as. */
export interface PluggedVif {
  ifname: string;
  vif: VifSpec;
}

const MAX_VIFS = 16;

/**
 * The Neutron VIFs a container has now. A container is created with its VIFs in a label, which
 * the engine cannot change; VIFs attached or detached later (nova's attach_interface /
 * detach_interface) make a record under `<state_path>/vifs/<uuid>.json` that replaces the label's
 * list from then on, so every later start, and a restarted agent, plugs the same interfaces.
 * Each keeps its guest interface name: detaching eth0 leaves eth1 as eth1.
 */
export class AttachedVifs {
  constructor(private readonly stateDir: string | undefined) {}

  private file(uuid: string): string {
    if (!this.stateDir) throw agentError('RUNTIME_ERROR', 'interfaces cannot be attached: the agent has no state directory ([DEFAULT] state_path)');
    return join(this.stateDir, 'vifs', `${uuid}.json`);
  }

  /** The record's VIFs when there is one, else the label's as eth0, eth1 ... in order. */
  async current(uuid: string, labels: Record<string, string> | null | undefined): Promise<PluggedVif[]> {
    if (this.stateDir) {
      const raw = await readFile(this.file(uuid), 'utf8').catch(() => null);
      if (raw !== null) {
        try {
          const v = JSON.parse(raw) as unknown;
          if (Array.isArray(v)) return v as PluggedVif[];
        } catch {
          // An unreadable record: the label's list, as if nothing were attached.
        }
      }
    }
    return vifsOf(labels).map((vif, i) => ({ ifname: `eth${i}`, vif }));
  }

  /**
   * The list with `vif` added under the first free interface name (eth0 is the project network's
   * when the container is on one); the same list when the port is there already.
   */
  withVif(list: PluggedVif[], vif: VifSpec, labels: Record<string, string> | null | undefined): { list: PluggedVif[]; ifname: string; added: boolean } {
    const had = list.find((p) => p.vif.portId === vif.portId);
    if (had) return { list, ifname: had.ifname, added: false };
    if (list.length >= MAX_VIFS) throw agentError('INVALID_INPUT', `an instance has at most ${MAX_VIFS} interfaces`, { field: 'vif' });
    const taken = new Set(list.map((p) => p.ifname));
    if (labels?.[LABEL_NETWORK]) taken.add('eth0');
    let n = 0;
    while (taken.has(`eth${n}`)) n++;
    const ifname = `eth${n}`;
    return { list: [...list, { ifname, vif }], ifname, added: true };
  }

  /** Replaces the container's record (atomically). */
  async save(uuid: string, list: PluggedVif[]): Promise<void> {
    const file = this.file(uuid);
    await mkdir(join(this.stateDir!, 'vifs'), { recursive: true, mode: 0o700 });
    await replaceFileDurably(file, JSON.stringify(list));
  }

  /** Drops the record of a removed container; none is fine. */
  async remove(uuid: string): Promise<void> {
    if (this.stateDir) await rm(this.file(uuid), { force: true });
  }
}
