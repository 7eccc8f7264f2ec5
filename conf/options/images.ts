import { str, int, bool, choice, list, type OptionSpec } from './spec.js';

/** The image store and the registries images come from. */
export const imagesSections = {
  image_store: {
    listen: str('127.0.0.1:9292', "Where the glance-bridge listens (HOST:PORT). 9292 is Glance's port."),
    connection: str('sqlite:///$state_path/images.sqlite', "Database of the image store's metadata.", { secret: true }),
    blob_path: str('$state_path/blobs', 'Directory of the content-addressed blob store.'),
    default_project: str('berth', 'Project owning images in noauth mode.'),
    max_body_bytes: int(1048576, 'Largest JSON request body the image API accepts, in bytes.', 1024, 104857600),
    max_image_bytes: int(
      1099511627776,
      "Largest image data an upload (PUT /v2/images/{id}/file) may store, in bytes; larger uploads are refused with 413 and the image is killed (Glance's image_size_cap).",
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    max_images_per_project: int(0, 'Most live images one project may own; creating one more is refused with 413. 0: no limit.', 0, Number.MAX_SAFE_INTEGER),
    max_bytes_per_project: int(
      0,
      'Most bytes of image data one project may store; an upload that would pass it is refused with 413. Uploads and imports still running count with the bytes they declared (or, for a chunked upload, have received), so several running at once cannot pass it together. 0: no limit.',
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    max_concurrent_imports: int(
      16,
      'Most registry imports (POST /v2/berth/import, web-download) running at once in the image service; one more is refused with 413 until one finishes. An import answered by an image already imported or importing takes no slot. 0: no limit.',
      0,
      100000,
    ),
    max_concurrent_imports_per_project: int(
      4,
      "Most registry imports one project may have running at once (Glance's image_count_uploading); one more is refused with 413 until one finishes. 0: no limit.",
      0,
      100000,
    ),
    active_before_hashes: bool(
      true,
      "Let an image imported from a registry, uploaded (PUT /v2/images/{id}/file: a snapshot) or web-downloaded, of 32 MiB or more turn active as soon as every blob is stored and its sha256 verified, while Glance's hashes of the served data (checksum, the md5, and os_hash_value, the sha512) are still being computed from the stored blobs; they are recorded moments later (about a second per 400 MB on 2 cores). In that window the image shows null hashes and its data is served without Content-MD5: Glance's clients (glanceclient's image download, which nova uses) verify what is known and nothing when neither hash is, so a download started in the window is not verified. An export to another Glance waits for the hashes. Hashing an earlier stop interrupted is redone at start. false: an import or upload turns active only with its hashes recorded.",
    ),
    image_property_quota: int(
      128,
      "Most custom properties an image may have (Glance's image_property_quota); a create or patch that would leave more is refused with 413. Keys and values set through the API have at most 255 characters each.",
      1,
      100000,
    ),
    web_download_urls: bool(
      true,
      "Let web-download (POST /v2/images/{id}/import) fetch http:// and https:// URLs into images whose container_format is not docker, as Glance's web-download does. Each destination, redirect hop included, passes the [registry] allowed_internal checks, and max_image_bytes, max_bytes_per_project and the max_concurrent_imports limits apply. false: only docker:// references are imported.",
    ),
    metadefs_path: str(
      '',
      "Folder of metadata definition files in Glance's format (the JSON files Glance ships in /etc/glance/metadefs, which glance-manage db_load_metadefs loads), served read-only at /v2/metadefs; namespaces that name no owner belong to default_project. Read at start-up: a file that does not parse stops the service naming it. Empty: an empty catalog, as a Glance with no definitions loaded.",
    ),
    registry_listen: str(
      '127.0.0.1:5050',
      "Where the read-only Registry v2 endpoint hosts pull imported images from listens (HOST:PORT); separate from listen because docker's /v2/ paths overlap Glance's /v2/images. Empty: not served.",
    ),
    auth_strategy: choice(
      'noauth',
      ['noauth', 'keystone'] as const,
      "How callers of the image API are identified: noauth (X-Project-Id or default_project, as Glance's noauth pipeline) or keystone (X-Auth-Token validated against [keystone_authtoken]; the token's project owns what it creates, admins see everything).",
    ),
    noauth_beyond_loopback: bool(
      false,
      'With auth_strategy = noauth, allow listen and registry_listen on addresses other than loopback. noauth believes the X-Project-Id and X-Roles headers, so whoever reaches the port acts as any project, or as admin: set this only on a network where every client is trusted; a cloud with tenants uses keystone.',
    ),
  },
  registry: {
    insecure_hosts: list(
      ['127.0.0.1:5000', 'localhost:5000'],
      'Registries spoken to over plain HTTP (loopback registries by default); all others use HTTPS. A redirect may lead to plain HTTP only from one of these to one of these. Loopback is still refused unless allowed_internal lists it.',
    ),
    allowed_internal: list(
      [],
      'Internal destinations the image service may fetch from anyway: CIDRs (10.20.0.0/16, fd00::/8; an address alone means /32 or /128, any port) or HOST[:PORT] (registry.internal:5000, 127.0.0.1:5000). Every registry, token realm and redirect hop is resolved and refused when an address is loopback, link-local (169.254.169.254), private (RFC 1918, fc00::/7, 100.64.0.0/10), unspecified, multicast or otherwise reserved, IPv4-mapped IPv6 included, unless listed here. Empty: only public addresses.',
    ),
    credentials_file: str(
      '',
      'Registry credentials per registry, in Docker\'s config.json format: {"auths": {"HOST[:PORT]": {"auth": "BASE64(USER:PASSWORD)"}}} (or "username" and "password" instead of "auth"). Each set is sent only to its registry, and to a token realm on the same host over HTTPS (plain HTTP only for a loopback registry in insecure_hosts); other realms are asked for anonymous tokens. Empty: no credentials.',
    ),
    credentials_host: str(
      '',
      'HOST[:PORT] of the one registry that username and password belong to (as written in image references; docker.io for Docker Hub). Needed whenever username is set: they are never sent to another registry.',
    ),
    username: str('', 'Deprecated (use credentials_file): user for the registry named in credentials_host.'),
    password: str('', 'Deprecated (use credentials_file): password for the registry named in credentials_host.', { secret: true }),
    max_parallel_layers: int(4, 'Layers fetched at once by one import.', 1, 64),
    request_timeout: int(60, 'Seconds without progress before a registry request is abandoned.', 1, 3600),
    retries: int(
      5,
      'Attempts after the first that a registry request may make when the registry is unreachable, times out or answers 429 or 5xx. A blob download that breaks off resumes with a Range request from the byte where it stopped; only a fault with less than 1 MiB of progress since the previous one uses up an attempt. 0: no retries.',
      0,
      100,
    ),
    retry_delay_ms: int(
      500,
      'Wait before the first retry of a registry request, in milliseconds; it doubles for each further one (with jitter) up to 30 s, unless the registry asks for another with Retry-After.',
      0,
      60000,
    ),
    max_manifest_bytes: int(4194304, 'Largest manifest or index accepted, in bytes.', 1024, 104857600),
    max_layer_bytes: int(10737418240, 'Largest single blob accepted, in bytes.', 1, Number.MAX_SAFE_INTEGER),
    platform: str('linux/amd64', 'Platform (OS/ARCH[/VARIANT]) picked from multi-platform images (manifest lists, OCI indexes).'),
    max_layers: int(128, 'Most layers an imported image may have; a manifest with more is refused before anything is fetched.', 1, 10000),
    max_image_bytes: int(
      68719476736,
      'Most bytes the config and layers of an imported image may declare in total; checked before anything is fetched.',
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    max_uncompressed_bytes: int(
      68719476736,
      'Most bytes one layer may unpack to; the layer scanner stops a larger one while it streams in.',
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    max_uncompressed_ratio: int(
      100,
      'Most uncompressed bytes per compressed byte of a layer (checked once a layer is past 64 MiB unpacked): stops decompression bombs.',
      2,
      100000,
    ),
  },
} as const satisfies Record<string, Record<string, OptionSpec>>;
