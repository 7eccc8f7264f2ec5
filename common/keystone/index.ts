export type { EndpointInterface, KeystoneCredentials, KeystoneSession, TokenInfo, TokenValidator } from './types.js';
export { keystoneSession, identityRoot, withSessionToken } from './session.js';
export { tokenValidator, type ValidatorOptions } from './validator.js';
export { incomingValidator } from './incoming.js';
