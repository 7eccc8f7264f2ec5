import { decodeBody } from '../../driver/rpc/envelope.js';
import type { Publisher } from '../../driver/notify/notifier.js';

/** Records what would have been published to the broker. */
export class FakePublisher implements Publisher {
  readonly published: { exchange: string; routingKey: string; message: Record<string, unknown> }[] = [];
  onConnect(): void {
    /* no broker, no topology */
  }
  async publish(exchange: string, routingKey: string, body: Buffer): Promise<void> {
    this.published.push({ exchange, routingKey, message: decodeBody(body) });
  }
  events(): string[] {
    return this.published.map((p) => String(p.message.event_type));
  }
}
