"""Drives a compute node with nova's own client: nova.compute.rpcapi.ComputeAPI and nova.objects.

Unmodified Debian python3-nova (Zed). One JSON job on argv[1]; prints one JSON line.
Job: {"url": "rabbit://...", "exchange": "nova", "host": "node1", "step": "build"|"stop"|...,
      "instance": {uuid, image_id, name, memory_mb, vcpus}, "tail_length": N,
      "image_ids": [...] (cache_images), "mode": bool (maintenance), "from", "migration_uuid" (evacuate)}
"""
import json
import os
import sys

from oslo_config import cfg
import oslo_messaging as messaging

import nova.conf
from nova import context as nova_context
from nova import objects
from nova import rpc
from nova.compute import rpcapi as compute_rpcapi
from nova.network import model as network_model


def setup(job):
    conf = nova.conf.CONF
    # The transport options are registered lazily by oslo; register the same objects up front so
    # transport_url can be overridden (copies from list_opts() would clash later).
    from oslo_messaging import transport as messaging_transport
    from oslo_messaging.rpc import client as messaging_client
    conf.register_opts(messaging_transport._transport_opts)
    conf.register_opts(messaging_client._client_opts)
    conf([], project='nova', default_config_files=[])
    messaging.set_transport_defaults(job['exchange'])
    conf.set_override('transport_url', job['url'])
    conf.set_override('notification_format', 'unversioned', group='notifications')
    conf.set_override('rpc_response_timeout', job.get('timeout', 20))
    rpc.init(conf)
    objects.register_all()


def make_instance(ctxt, job):
    i = job['instance']
    flavor = objects.Flavor(id=1, flavorid='berth.tiny', name='berth.tiny', memory_mb=i['memory_mb'], vcpus=i['vcpus'],
                            root_gb=1, ephemeral_gb=0, swap=0, rxtx_factor=1.0, vcpu_weight=0, disabled=False,
                            is_public=True, extra_specs={}, description=None)
    inst = objects.Instance(context=ctxt, id=1, uuid=i['uuid'], host=job['host'], node=job['host'],
                            vm_state=i.get('vm_state', 'active'), task_state=None, power_state=1,
                            image_ref=i['image_id'], display_name=i['name'], display_description=i['name'],
                            hostname=i['name'], project_id='demo', user_id='demo', memory_mb=i['memory_mb'],
                            vcpus=i['vcpus'], root_gb=1, ephemeral_gb=0, flavor=flavor, metadata={'via': 'nova'},
                            system_metadata={}, launch_index=0, availability_zone='nova', reservation_id='r-nova0001',
                            user_data=None, key_data=None, key_name=None, config_drive='', locked=False)
    inst.info_cache = objects.InstanceInfoCache(instance_uuid=i['uuid'], network_info=network_model.NetworkInfo([]))
    inst.obj_reset_changes()
    return inst


def main():
    job = json.loads(sys.argv[1])
    setup(job)
    ctxt = nova_context.RequestContext(user_id='demo', project_id='demo', is_admin=True)
    api = compute_rpcapi.ComputeAPI()
    inst = make_instance(ctxt, job)
    step = job['step']
    result = None
    try:
        if step == 'build':
            image = {'id': job['instance']['image_id'], 'name': 'busybox', 'status': 'active', 'container_format': 'docker',
                     'disk_format': 'raw', 'properties': {}}
            api.build_and_run_instance(ctxt, inst, job['host'], image, None, {}, node=job['host'], limits={},
                                       accel_uuids=[])
        elif step == 'stop':
            api.stop_instance(ctxt, inst, do_cast=True)
        elif step == 'start':
            api.start_instance(ctxt, inst)
        elif step == 'reboot':
            api.reboot_instance(ctxt, inst, None, job.get('reboot_type', 'SOFT'))
        elif step == 'pause':
            api.pause_instance(ctxt, inst)
        elif step == 'unpause':
            api.unpause_instance(ctxt, inst)
        elif step == 'console':
            result = api.get_console_output(ctxt, inst, job.get('tail_length', 10))
        elif step == 'diagnostics':
            result = api.get_instance_diagnostics(ctxt, inst).obj_to_primitive()
        elif step == 'cache_images':
            result = api.cache_images(ctxt, job['host'], job['image_ids'])
        elif step == 'maintenance':
            result = api.host_maintenance_mode(ctxt, job['host'], job['host'], job['mode'])
        elif step == 'evacuate':
            # As the conductor sends it after nova-api made the 'accepted' evacuation migration:
            # the instance still names its old host, which is down.
            inst.host = inst.node = job['from']
            inst.task_state = 'rebuilding'
            inst.obj_reset_changes()
            migration = objects.Migration(context=ctxt, id=1, uuid=job['migration_uuid'], instance_uuid=inst.uuid,
                                          source_compute=job['from'], source_node=job['from'], dest_compute=job['host'],
                                          status='accepted', migration_type='evacuation')
            api.rebuild_instance(ctxt, inst, None, [], None, inst.image_ref, {}, objects.BlockDeviceMappingList(objects=[]),
                                 True, None, job['host'], None, False, migration, None, None, [], None)
        elif step == 'terminate':
            api.terminate_instance(ctxt, inst, objects.BlockDeviceMappingList(objects=[]))
        else:
            raise ValueError('unknown step %s' % step)
        print(json.dumps({'ok': True, 'result': result}))
    except Exception as e:  # reported to the test as data
        print(json.dumps({'ok': False, 'error': {'type': type(e).__name__, 'module': type(e).__module__, 'str': str(e)[:500]}}))
    finally:
        rpc.cleanup()


if __name__ == '__main__':
    main()
    sys.stdout.flush()
    # A non-daemon helper thread of the client libraries would hold the exit for ~10 s.
    os._exit(0)
