import { CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES } from './validate.js';

/**
 * GET /v2/schemas/image and /v2/schemas/images: JSON Schema (draft 4) documents in the shape
 * Glance serves. python-glanceclient builds its image model from them (warlock) and validates
 * every image it receives against the first, so each attribute the API returns is declared,
 * with null allowed wherever the API may send null. Custom properties are strings.
 */

const nullable = (type: string, extra: Record<string, unknown> = {}) => ({ type: ['null', type], ...extra });
const readOnly = (schema: Record<string, unknown>, description: string) => ({ ...schema, readOnly: true, description });

const STATUSES = ['queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated'];

export function imageSchema(): Record<string, unknown> {
  return {
    name: 'image',
    additionalProperties: { type: 'string' },
    properties: {
      id: {
        type: 'string',
        pattern: '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$',
        description: 'An identifier for the image',
      },
      name: nullable('string', { maxLength: 255, description: 'Descriptive name for the image' }),
      status: readOnly({ type: 'string', enum: STATUSES }, 'Status of the image'),
      visibility: { type: 'string', enum: VISIBILITIES, description: 'Scope of image accessibility' },
      protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
      os_hidden: { type: 'boolean', description: 'If true, image will not appear in default image list response.' },
      checksum: readOnly(nullable('string', { maxLength: 32 }), 'md5 hash of image contents.'),
      os_hash_algo: readOnly(nullable('string', { maxLength: 64 }), 'Algorithm to calculate the os_hash_value'),
      os_hash_value: readOnly(nullable('string', { maxLength: 128 }), 'Hexdigest of the image contents using the algorithm specified by os_hash_algo'),
      owner: nullable('string', { maxLength: 255, description: 'Owner of the image' }),
      size: readOnly(nullable('integer'), 'Size of image file in bytes'),
      virtual_size: readOnly(nullable('integer'), 'Virtual size of image in bytes'),
      container_format: { type: ['null', 'string'], enum: [null, ...CONTAINER_FORMATS], description: 'Format of the container' },
      disk_format: { type: ['null', 'string'], enum: [null, ...DISK_FORMATS], description: 'Format of the disk' },
      created_at: readOnly({ type: 'string' }, 'Date and time of image registration'),
      updated_at: readOnly({ type: 'string' }, 'Date and time of the last image modification'),
      tags: { type: 'array', items: { type: 'string', maxLength: 255 }, description: 'List of strings related to the image' },
      direct_url: readOnly({ type: 'string' }, 'URL to access the image file kept in external store'),
      min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
      min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
      self: readOnly({ type: 'string' }, 'An image self url'),
      file: readOnly({ type: 'string' }, 'An image file url'),
      schema: readOnly({ type: 'string' }, 'An image schema url'),
      stores: readOnly({ type: 'string' }, 'Store in which image data resides. May be a comma-separated list of store identifiers.'),
      locations: { type: 'array', items: { type: 'object' }, description: 'A set of URLs to access the image file kept in external store' },
      berth_import_bytes_done: readOnly({ type: 'integer', is_base: false }, 'Bytes fetched so far by a running import'),
      berth_import_bytes_total: readOnly({ type: 'integer', is_base: false }, 'Bytes a running import has to fetch'),
    },
    links: [
      { rel: 'self', href: '{self}' },
      { rel: 'enclosure', href: '{file}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

export function imagesSchema(): Record<string, unknown> {
  const image = imageSchema();
  return {
    name: 'images',
    properties: {
      images: { type: 'array', items: image },
      schema: { type: 'string' },
      first: { type: 'string' },
      next: { type: 'string' },
    },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}
