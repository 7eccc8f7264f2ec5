import { strict as assert } from 'node:assert';
import { docOf, documentedEndpoints, renderRpcReference } from '../../../driver/compute/rpc-reference.js';

describe('RPC reference', () => {
  it('documents every method of every endpoint, and nothing that does not exist', () => {
    for (const { endpoint, docs } of documentedEndpoints()) {
      for (const method of Object.keys(endpoint.methods)) assert.ok(docOf(docs, method), `${endpoint.namespace ?? 'compute'}.${method} has no doc`);
      for (const method of Object.keys(docs)) assert.ok(method in endpoint.methods, `doc for ${method}, which the endpoint lacks`);
    }
  });

  it('renders arguments from the endpoint definitions', () => {
    const md = renderRpcReference();
    assert.match(md, /\| `build_and_run_instance` \| cast \| `instance`, `image`, `request_spec`/);
    assert.match(md, /\| `get_vnc_console` \| cast or call \|/);
  });
});
