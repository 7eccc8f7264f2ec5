/** The shape of one option and the builders the section files declare options with. */
export type OptionType = 'string' | 'int' | 'float' | 'bool' | 'url' | 'enum' | 'list';

export interface OptionSpec<T = unknown> {
  type: OptionType;
  default: T;
  help: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  secret?: boolean;
  /** Shown in the sample instead of a default computed at run time (e.g. the host name). */
  sampleDefault?: string;
}

export const str = (def: string, help: string, extra: Partial<OptionSpec<string>> = {}): OptionSpec<string> => ({
  type: 'string',
  default: def,
  help,
  ...extra,
});
export const url = (def: string, help: string, extra: Partial<OptionSpec<string>> = {}): OptionSpec<string> => ({ type: 'url', default: def, help, ...extra });
export const int = (def: number, help: string, min?: number, max?: number): OptionSpec<number> => ({ type: 'int', default: def, help, min, max });
export const float = (def: number, help: string, min?: number, max?: number): OptionSpec<number> => ({ type: 'float', default: def, help, min, max });
export const bool = (def: boolean, help: string): OptionSpec<boolean> => ({ type: 'bool', default: def, help });
export const choice = <C extends string>(def: C, choices: readonly C[], help: string): OptionSpec<C> => ({ type: 'enum', default: def, help, choices });
export const list = (def: string[], help: string): OptionSpec<string[]> => ({ type: 'list', default: def, help });

/** The Keystone v3 password block oslo services share (keystoneauth's `password` plugin). */
export const keystoneAuth = (purpose: string) => ({
  auth_url: str('', `Keystone v3 endpoint (e.g. http://controller:5000/v3) ${purpose}. Empty: Keystone is not used here.`),
  username: str('', 'Keystone user name.'),
  password: str('', 'Keystone password of that user.', { secret: true }),
  project_name: str('service', 'Project the token is scoped to.'),
  user_domain_name: str('Default', 'Domain of the user.'),
  project_domain_name: str('Default', 'Domain of the project.'),
  region_name: str('', 'Region whose catalog endpoints are used; empty: the first region offering the service.'),
});
