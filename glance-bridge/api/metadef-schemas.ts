/**
 * JSON schemas of the metadata definitions API at /v2/schemas/metadefs/*, as Glance Zed publishes
 * them: the same names, members, required members and link templates, so that clients that
 * validate or render from them (Horizon, glanceclient) see what they expect.
 */
type Schema = Record<string, unknown>;

const str = (extra: Schema = {}): Schema => ({ type: 'string', ...extra });
const date = (what: string, when: 'creation' | 'modification'): Schema =>
  str({ readOnly: true, format: 'date-time', description: when === 'creation' ? `When the ${what} was created` : `When the ${what} was last changed` });
const link = str({ readOnly: true });
const LINKS = [
  { rel: 'first', href: '{first}' },
  { rel: 'next', href: '{next}' },
  { rel: 'describedby', href: '{schema}' },
];
const PROPERTY_TYPES = ['array', 'boolean', 'integer', 'number', 'object', 'string', null];

const DEFINITIONS: Schema = {
  positiveInteger: { type: 'integer', minimum: 0 },
  positiveIntegerDefault0: { allOf: [{ $ref: '#/definitions/positiveInteger' }, { default: 0 }] },
  stringArray: { type: 'array', items: { type: 'string' }, minItems: 1, uniqueItems: true },
};

/** One property definition (a JSON schema fragment of its own). */
const PROPERTY_MEMBERS: Schema = {
  name: str({ maxLength: 80 }),
  title: str(),
  description: str(),
  operators: { type: 'array', items: str() },
  type: str({ enum: PROPERTY_TYPES }),
  required: { $ref: '#/definitions/stringArray' },
  minimum: { type: 'number' },
  maximum: { type: 'number' },
  maxLength: { $ref: '#/definitions/positiveInteger' },
  minLength: { $ref: '#/definitions/positiveIntegerDefault0' },
  pattern: str({ format: 'regex' }),
  enum: { type: 'array' },
  readonly: { type: 'boolean' },
  default: {},
  items: { type: 'object', properties: { type: str({ enum: PROPERTY_TYPES }), enum: { type: 'array' } } },
  maxItems: { $ref: '#/definitions/positiveInteger' },
  minItems: { $ref: '#/definitions/positiveIntegerDefault0' },
  uniqueItems: { type: 'boolean', default: false },
  additionalItems: { type: 'boolean' },
};

/** A map of property name → definition, as namespaces and objects hold them. */
const PROPERTY_MAP: Schema = {
  type: 'object',
  additionalProperties: {
    type: 'object',
    required: ['title', 'type'],
    properties: Object.fromEntries(Object.entries(PROPERTY_MEMBERS).filter(([k]) => k !== 'name')),
  },
};
const WITH_PROPERTY_MAP: Schema = { ...DEFINITIONS, property: PROPERTY_MAP };

const association: Schema = {
  name: 'resource_type_association',
  properties: {
    name: str({ maxLength: 80, description: 'The resource type (a Heat resource type name where one exists, e.g. OS::Glance::Image)' }),
    prefix: str({ maxLength: 80, description: "Prefix of the namespace's property names when applied to this resource type, separator included (e.g. hw_)" }),
    properties_target: str({
      maxLength: 80,
      description: 'Which key/value set of the resource the properties apply to, where it has several (e.g. image for volume image metadata)',
    }),
    created_at: date('association', 'creation'),
    updated_at: date('association', 'modification'),
  },
  additionalProperties: false,
  required: ['name'],
};

const tag: Schema = {
  name: 'tag',
  properties: { name: str({ maxLength: 80 }), created_at: date('tag', 'creation'), updated_at: date('tag', 'modification') },
  additionalProperties: false,
  required: ['name'],
};

const object: Schema = {
  name: 'object',
  properties: {
    name: str({ maxLength: 80 }),
    description: str(),
    required: { $ref: '#/definitions/stringArray' },
    properties: { $ref: '#/definitions/property' },
    schema: link,
    self: link,
    created_at: date('object', 'creation'),
    updated_at: date('object', 'modification'),
  },
  additionalProperties: false,
  required: ['name'],
  definitions: WITH_PROPERTY_MAP,
};

const property: Schema = {
  name: 'property',
  properties: PROPERTY_MEMBERS,
  additionalProperties: false,
  required: ['type', 'title', 'name'],
  definitions: DEFINITIONS,
};

const namespace: Schema = {
  name: 'namespace',
  properties: {
    namespace: str({ maxLength: 80, description: "The namespace's unique name" }),
    display_name: str({ maxLength: 80, description: 'A name for people, shown by user interfaces' }),
    description: str({ maxLength: 500, description: 'What the namespace defines' }),
    visibility: str({ enum: ['public', 'private'], description: 'Who sees the namespace: everyone, or its owner and admins' }),
    protected: { type: 'boolean', description: 'A protected namespace cannot be deleted' },
    owner: str({ maxLength: 255, description: 'The project that owns the namespace' }),
    created_at: date('namespace', 'creation'),
    updated_at: date('namespace', 'modification'),
    schema: link,
    self: link,
    resource_type_associations: { type: 'array', items: { type: 'object', properties: { name: str(), prefix: str(), properties_target: str() } } },
    properties: { $ref: '#/definitions/property' },
    objects: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: str(), description: str(), required: { $ref: '#/definitions/stringArray' }, properties: { $ref: '#/definitions/property' } },
      },
    },
    tags: { type: 'array', items: { type: 'object', properties: { name: str() } } },
  },
  additionalProperties: false,
  required: ['namespace'],
  definitions: WITH_PROPERTY_MAP,
};

function withoutDefinitions(schema: Schema): Schema {
  const { definitions: _definitions, ...rest } = schema;
  return rest;
}

/** A list answer: its members under `member`, the paging links, and the member's definitions. */
function collection(name: string, member: string, items: Schema): Schema {
  const item = withoutDefinitions(items);
  const definitions = items.definitions;
  return {
    name,
    properties: { [member]: { type: 'array', items: item }, first: str(), next: str(), schema: str() },
    links: LINKS,
    ...(definitions ? { definitions } : {}),
  };
}

export const METADEF_SCHEMAS: Readonly<Record<string, Schema>> = {
  namespace,
  namespaces: collection('namespaces', 'namespaces', namespace),
  object,
  objects: collection('objects', 'objects', object),
  property,
  // A namespace's properties answer as a map of name to definition, not a list.
  properties: {
    name: 'properties',
    properties: { properties: { type: 'object', additionalProperties: withoutDefinitions(property) }, first: str(), next: str(), schema: str() },
    links: LINKS,
    definitions: DEFINITIONS,
  },
  tag,
  tags: collection('tags', 'tags', tag),
  resource_type: association,
  resource_types: collection('resource_type_associations', 'resource_type_associations', association),
};
