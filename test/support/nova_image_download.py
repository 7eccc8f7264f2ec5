"""Downloads an image the way nova-compute does (nova.image.glance.GlanceImageServiceV2),
from a Glance v2 endpoint in noauth mode, and prints what nova saw as JSON.

argv: ENDPOINT IMAGE_ID DEST_PATH
"""
import hashlib
import json
import sys

import nova.conf
from nova import context as nova_context
from nova.image import glance


def main():
    endpoint, image_id, dest = sys.argv[1:4]
    conf = nova.conf.CONF
    conf([], project='nova', default_config_files=[])
    conf.set_override('api_servers', [endpoint], group='glance')
    ctx = nova_context.RequestContext(user_id='berth-test', project_id='berth', auth_token='noauth')
    images = glance.GlanceImageServiceV2()
    meta = images.show(ctx, image_id)
    images.download(ctx, image_id, dst_path=dest)
    md5 = hashlib.md5()
    size = 0
    with open(dest, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            md5.update(chunk)
            size += len(chunk)
    print(json.dumps({'status': meta.get('status'), 'checksum': meta.get('checksum'), 'size': size, 'md5': md5.hexdigest()}))


if __name__ == '__main__':
    main()
