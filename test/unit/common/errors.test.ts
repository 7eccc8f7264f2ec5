import assert from 'node:assert/strict';
import { errorFromBody } from '../../../common/errors.js';

describe('common/errors: errorFromBody', () => {
  it('rebuilds a Berth error body with its code and details', () => {
    const e = errorFromBody({ error: { code: 'IMAGE_NOT_FOUND', message: 'no image x', details: { image_id: 'x' } } }, 404, 'GET /x');
    assert.deepEqual([e.code, e.message, e.status, e.details], ['IMAGE_NOT_FOUND', 'no image x', 404, { image_id: 'x' }]);
  });

  it('keeps what an OpenStack service said, in each of their shapes', () => {
    const cases: Array<[unknown, RegExp]> = [
      [
        { errors: [{ status: 400, title: 'Bad Request', detail: 'No such trait(s): CUSTOM_X.', code: 'placement.undefined_code' }] },
        /HTTP 400: No such trait\(s\): CUSTOM_X\.$/,
      ],
      [{ error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } }, /requires authentication/],
      [{ badRequest: { code: 400, message: 'Invalid flavorRef provided.' } }, /Invalid flavorRef provided/],
      [{ message: '409 Conflict\n\nImage status transition from active to saving is not allowed' }, /409 Conflict Image status transition/],
    ];
    for (const [body, re] of cases) {
      const e = errorFromBody(body, 400, 'placement PUT /traits');
      assert.equal(e.code, 'UPSTREAM_ERROR');
      assert.match(e.message, re);
    }
  });

  it('says only the status when the body says nothing, and never floods', () => {
    assert.equal(errorFromBody('<html>', 503, 'GET /').message, 'GET /: HTTP 503');
    assert.ok(errorFromBody({ errors: [{ detail: 'x'.repeat(5000) }] }, 400, 'p').message.length < 400);
  });
});
