// pkgcloud ships no types; session.ts narrows the part it uses: the OpenStack identity context.
declare module 'pkgcloud/lib/pkgcloud/openstack/context/index.js' {
  export const Identity: unknown;
}
