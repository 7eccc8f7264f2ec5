/**
 * Why a Berth node refuses nova's volume methods (attach_volume, detach_volume, swap_volume,
 * reserve_block_device_name) with nova's NotImplementedError, as a virt driver without volume
 * support does. Measured in docs/volumes.md.
 */
export const CINDER_REFUSAL =
  "Berth has no Cinder volume connector, and a container host need not have what one would use (the reference host's kernel has no device-mapper for LVM volumes, no iscsi_tcp initiator and no NFS client: docs/volumes.md); Berth's local volumes (`berth volume`, standalone mode) are its alternative";
