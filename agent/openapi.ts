import document from '../docs/agent-openapi.json' with { type: 'json' };
import { AGENT_ERROR_CODES, AGENT_ERRORS } from './client/errors.js';

/** The agent's OpenAPI 3.0 document, kept in the repository and served at GET /v1/openapi.json. */
export const OPENAPI_DOCUMENT: Readonly<Record<string, unknown>> = document;

/**
 * docs/agent-openapi.json as tools/gen-docs.ts writes it: the committed document with its list of
 * error codes (the Error schema's `x-error-codes`) taken from AGENT_ERROR_CODES and their statuses.
 */
export function renderAgentOpenApi(): string {
  const doc = structuredClone(document) as { components: { schemas: { Error: Record<string, unknown> } } };
  doc.components.schemas.Error['x-error-codes'] = Object.fromEntries(
    AGENT_ERROR_CODES.map((code) => {
      const spec = AGENT_ERRORS[code];
      return [code, { status: spec.status, retryable: spec.retryable ?? false }];
    }),
  );
  return `${JSON.stringify(doc, null, 2)}\n`;
}
