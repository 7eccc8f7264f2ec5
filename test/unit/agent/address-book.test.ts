import assert from 'node:assert/strict';
import { AddressBook } from '../../../agent/network/address-book.js';
import { LABEL_INSTANCE, LABEL_IPV4, LABEL_NETWORK } from '../../../agent/runtime/types.js';

const labels = (uuid: string, net: string, ip: string) => ({ [LABEL_INSTANCE]: uuid, [LABEL_NETWORK]: net, [LABEL_IPV4]: ip });

describe('agent address book', () => {
  it('answers who holds an address, follows removals and ignores unlabelled containers', () => {
    const book = new AddressBook();
    book.add(labels('u1', 'n1', '10.0.0.2'));
    book.add(labels('u2', 'n1', '10.0.0.3'));
    book.add(labels('u3', 'n2', '10.0.0.2'));
    book.add({ [LABEL_INSTANCE]: 'u4' });
    book.add(null);
    assert.deepEqual(book.holdersOf('n1', '10.0.0.2'), ['u1']);
    assert.deepEqual(book.holdersOf('n2', '10.0.0.2'), ['u3']);
    assert.equal(book.size, 3);
    book.remove('u1');
    book.remove('unknown');
    assert.deepEqual(book.holdersOf('n1', '10.0.0.2'), []);
    // A container seen again (an event after the listing) moves, never counts twice.
    book.add(labels('u2', 'n1', '10.0.0.9'));
    book.add(labels('u2', 'n1', '10.0.0.9'));
    assert.deepEqual(book.holdersOf('n1', '10.0.0.3'), []);
    assert.deepEqual(book.holdersOf('n1', '10.0.0.9'), ['u2']);
    assert.equal(book.size, 2);
  });
});
