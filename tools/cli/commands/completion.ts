import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';
import { FORMATS } from '../output.js';

/** Every command path (`""`, `" server"`, `" server create"`) with the words that may follow it. */
function tree(cmd: Command, path = '', out = new Map<string, string[]>()): Map<string, string[]> {
  const words = [...cmd.commands.map((c) => c.name()), ...cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x))), '--help'];
  out.set(path, words);
  for (const sub of cmd.commands) tree(sub, `${path} ${sub.name()}`, out);
  return out;
}

/**
 * A bash completion script generated from the commands themselves: subcommands, options, and the
 * values of -f/--format. zsh loads it through bashcompinit.
 */
export function bashCompletion(program: Command): string {
  const cases = [...tree(program)].map(([path, words]) => `    "${path}") words="${words.join(' ')}" ;;`).join('\n');
  const commands = [...tree(program).keys()]
    .filter(Boolean)
    .map((p) => `"${p}"`)
    .join(' ');
  return `# bash completion for berth: source it, or save it as /etc/bash_completion.d/berth
_berth() {
  local cur prev path="" w i words cand
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
    -f|--format) COMPREPLY=( $(compgen -W "${FORMATS.join(' ')}" -- "$cur") ); return ;;
    --config) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
  esac
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    for cand in ${commands}; do
      if [ "$cand" = "$path $w" ]; then path="$path $w"; break; fi
    done
  done
  case "$path" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -o default -F _berth berth
`;
}

export function registerCompletion(program: Command): void {
  program
    .command('completion <shell>')
    .description('print a shell completion script: bash or zsh (eval "$(berth completion bash)")')
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bashCompletion(program));
      else if (shell === 'zsh') process.stdout.write(`autoload -U +X bashcompinit && bashcompinit\n${bashCompletion(program)}`);
      else throw new UsageError(`completion: unknown shell ${JSON.stringify(shell)} (bash or zsh)`);
    });
}
