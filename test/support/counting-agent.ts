import type { InstanceSpec, InstanceStatus } from '../../agent/client/types.js';
import { FakeAgentClient } from '../fakes/agent-client.js';

/** The fake agent, also counting createInstance per instance uuid (a second create would be a second container). */
export class CountingAgentClient extends FakeAgentClient {
  readonly createsByUuid = new Map<string, number>();
  createsInFlight = 0;

  override async createInstance(uuid: string, spec: InstanceSpec): Promise<InstanceStatus> {
    this.createsByUuid.set(uuid, (this.createsByUuid.get(uuid) ?? 0) + 1);
    this.createsInFlight++;
    try {
      return await super.createInstance(uuid, spec);
    } finally {
      this.createsInFlight--;
    }
  }
}
