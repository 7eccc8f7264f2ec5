import type { Endpoint } from '../rpc/dispatcher.js';
import { renderReference, type MethodDoc } from '../rpc/reference.js';
import { BASEAPI_DOCS, BERTH_DOCS, COMPUTE_DOCS, unsupportedDoc } from './rpc-docs.js';
import { baseApiEndpoint, computeEndpoint, UNSUPPORTED_METHODS } from './endpoint.js';
import { berthEndpoint } from './berth-endpoint.js';
import type { ComputeManager } from './manager.js';
import type { InstanceStore } from './store.js';
import type { AgentClient } from '../../agent/client/types.js';

/** The endpoints as the service builds them, with their docs; handlers are never run here. */
export function documentedEndpoints(): { endpoint: Endpoint; docs: Record<string, MethodDoc> }[] {
  const none = {} as never;
  return [
    { endpoint: computeEndpoint(none as ComputeManager, none as AgentClient), docs: COMPUTE_DOCS },
    { endpoint: baseApiEndpoint(), docs: BASEAPI_DOCS },
    { endpoint: berthEndpoint('node', none as InstanceStore, none as ComputeManager), docs: BERTH_DOCS },
  ];
}

export function docOf(docs: Record<string, MethodDoc>, method: string): MethodDoc | undefined {
  return docs[method] ?? ((UNSUPPORTED_METHODS as readonly string[]).includes(method) ? unsupportedDoc() : undefined);
}

/** docs/rpc-reference.md. */
export function renderRpcReference(): string {
  return renderReference(
    [
      '# RPC reference',
      '',
      'Generated from the endpoint definitions (`driver/compute/`); do not edit. Requests use oslo.messaging\'s rabbit wire format: exchange `nova` (`[DEFAULT] control_exchange`), routing key `compute.<host>` (or `compute` for any node; fanout exchange `compute_fanout`). Failures come back to calls in oslo\'s failure format; for casts they are logged and, where an instance is concerned, recorded as its fault. "fault X" means the instance goes to `error` with fault X.',
      '',
    ],
    documentedEndpoints().map(({ endpoint, docs }) => ({ endpoint, docOf: (method: string) => docOf(docs, method) })),
  );
}
