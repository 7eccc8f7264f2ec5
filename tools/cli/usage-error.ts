import { BerthError } from '../../common/errors.js';

/** A usage or client-configuration error: one line on stderr, exit code 2. */
export class UsageError extends BerthError {
  constructor(message: string) {
    super('USAGE', message, { status: 400 });
  }
}
