"""Drives the stock python-glanceclient (v2, noauth) against an image service.

Reads one JSON job on stdin: {"endpoint": URL, "ops": [{"op": ..., ...}, ...]} and prints one
JSON line {"results": [...]}, one result per op. An op's "id" may be "@N": the id in result N.
HTTP errors are results too ({"error": {...}}), so tests can check what glanceclient shows.
"""
import hashlib
import json
import sys

import glanceclient
from glanceclient import exc


def plain(image):
    return json.loads(json.dumps(dict(image), default=str))


def run(client, op, results):
    image_id = op.get('id')
    if isinstance(image_id, str) and image_id.startswith('@'):
        image_id = results[int(image_id[1:])]['id']
    kind = op['op']
    if kind == 'create':
        return plain(client.images.create(**op['args']))
    if kind == 'upload':
        with open(op['path'], 'rb') as data:
            client.images.upload(image_id, data)
        return {'id': image_id}
    if kind == 'show':
        return plain(client.images.get(image_id))
    if kind == 'list':
        kwargs = {k: op[k] for k in ('filters', 'page_size', 'limit', 'sort_key', 'sort_dir', 'sort') if k in op}
        return {'images': [plain(i) for i in client.images.list(**kwargs)]}
    if kind == 'download':
        # data() verifies os_hash_value (sha512) while the body is read, raising on a mismatch.
        body = client.images.data(image_id)
        md5, size = hashlib.md5(), 0
        with open(op['path'], 'wb') as out:
            for chunk in body:
                md5.update(chunk)
                size += len(chunk)
                out.write(chunk)
        return {'id': image_id, 'size': size, 'md5': md5.hexdigest()}
    if kind == 'update':
        return plain(client.images.update(image_id, remove_props=op.get('remove_props'), **op.get('args', {})))
    if kind == 'tag':
        client.image_tags.update(image_id, op['tag'])
        return {'id': image_id}
    if kind == 'deactivate':
        client.images.deactivate(image_id)
        return {'id': image_id}
    if kind == 'reactivate':
        client.images.reactivate(image_id)
        return {'id': image_id}
    if kind == 'delete':
        client.images.delete(image_id)
        return {'id': image_id}
    raise ValueError('unknown op %s' % kind)


def main():
    job = json.load(sys.stdin)
    client = glanceclient.Client('2', endpoint=job['endpoint'], token='noauth')
    results = []
    for op in job['ops']:
        try:
            results.append(run(client, op, results))
        except exc.HTTPException as e:
            results.append({'error': {'class': type(e).__name__, 'code': e.code, 'details': e.details, 'text': str(e)}})
    print(json.dumps({'results': results}))


if __name__ == '__main__':
    main()
