import document from '../docs/agent-openapi.json' with { type: 'json' };

/** The agent's OpenAPI 3.0 document, kept in the repository and served at GET /v1/openapi.json. */
export const OPENAPI_DOCUMENT: Readonly<Record<string, unknown>> = document;
