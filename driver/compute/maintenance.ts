import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../../common/log.js';
import { novaError, type RpcFailure } from '../rpc/failure.js';
import type { ControlPlane } from './control-plane.js';

/**
 * A node's maintenance window (nova's host_maintenance_mode). nova's contract is that entering it
 * moves the guests elsewhere; a container cannot be live-migrated, and moving every guest cold
 * behind the operator's back would stop them, so a Berth node does what it honestly can: while
 * on, the node takes no new instances (no builds, no evacuations to it), the scheduler is told
 * (set_host_enabled false: COMPUTE_STATUS_DISABLED in Placement), and every running instance is
 * left running and manageable. The operator moves them (resize or migrate, or evacuate once the
 * node is down). The window survives a restart of the node: a file in its state folder.
 */
export class Maintenance {
  private on: boolean;

  constructor(
    private readonly plane: Pick<ControlPlane, 'setHostEnabled'>,
    private readonly host: string,
    /** Where the window is kept across restarts; none: in memory only. */
    private readonly file: string | null,
    private readonly log: Logger,
  ) {
    this.on = file !== null && existsSync(file);
  }

  get active(): boolean {
    return this.on;
  }

  /** Enters (true) or leaves (false) the window: nova's 'on_maintenance' or 'off_maintenance'. */
  async set(mode: boolean): Promise<'on_maintenance' | 'off_maintenance'> {
    await this.plane.setHostEnabled(!mode);
    if (this.file) {
      if (mode) {
        mkdirSync(dirname(this.file), { recursive: true });
        writeFileSync(this.file, `${new Date().toISOString()}\n`);
      } else rmSync(this.file, { force: true });
    }
    if (mode !== this.on) this.log.warn({ maintenance: mode }, mode ? 'maintenance window entered: no new instances on this node' : 'maintenance window left');
    this.on = mode;
    return mode ? 'on_maintenance' : 'off_maintenance';
  }

  /** The refusal of new work while the window is on, else null. */
  refusal(): RpcFailure | null {
    if (!this.on) return null;
    return novaError('ComputeServiceUnavailable', 503, `Compute service of ${this.host} is unavailable at this time: the node is in maintenance.`, {
      host: this.host,
    });
  }

  /**
   * At start-up: a window kept from before the restart is told to the control plane again (a
   * nova node registers with its provider's traits from nova's own record of the service).
   */
  async restore(): Promise<void> {
    if (this.on) await this.plane.setHostEnabled(false);
  }
}
