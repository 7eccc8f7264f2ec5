export type { EndpointInterface, KeystoneCredentials, KeystoneSession, TokenInfo, TokenValidator } from './types.js';
export { keystoneSession, identityRoot } from './session.js';
export { tokenValidator, type ValidatorOptions } from './validator.js';
