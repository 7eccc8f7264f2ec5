import { BerthError } from '../../common/errors.js';

/** A --wait that ran out of time: the operation did not fail, but it did not finish either. Exit code 1. */
export class WaitTimeout extends BerthError {
  constructor(message: string) {
    super('WAIT_EXPIRED', message, { status: 408 });
  }
}
