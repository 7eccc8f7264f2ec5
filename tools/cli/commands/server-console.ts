import type { Command } from 'commander';
import { instanceRequest } from '../../lib/nova-requests.js';
import { connectConsole, EscapeFilter, type ConsoleConnectInfo } from '../../lib/console-client.js';
import type { Run } from './server-args.js';
import { resolveServer } from './server-lookup.js';
import { primitiveOf } from './server-view.js';

/**
 * `berth server console SERVER`: the instance's serial console, through the same
 * get_serial_console a control plane sends, straight to the agent's endpoint. Input goes to the
 * guest's stdin, its stdout and stderr come back. Instances have no terminal of their own (no
 * TTY in the container), so on a terminal the local line editing and echo stay on and a line
 * goes when Enter is pressed; `~.` at the start of a line, or end of input (Ctrl-D), ends the
 * session. From a pipe, input goes as it comes and the session ends at EOF.
 */
export function registerConsole(server: Command, run: Run): void {
  server
    .command('console <server>')
    .description("interactive serial console of an instance (the guest's stdin and stdout); ~. at a line start or EOF ends it")
    .action((ref: string) =>
      run(async (ctx) => {
        const view = await resolveServer(ctx, ref);
        const rpc = await ctx.rpcClient();
        const info = await rpc.call<ConsoleConnectInfo>(
          ctx.computeKey,
          instanceRequest('get_serial_console', primitiveOf(view), { console_type: 'serial' }),
          ctx.config.DEFAULT.rpc_response_timeout,
        );
        const { socket, rest } = await connectConsole(info);
        if (process.stdin.isTTY) process.stderr.write(`Connected to the console of ${view.name || view.uuid}; ~. at the start of a line or Ctrl-D ends it.\n`);
        if (rest.length) process.stdout.write(rest);
        await new Promise<void>((resolve) => {
          const input = new EscapeFilter();
          const done = () => {
            process.stdin.unpipe(input);
            process.stdin.pause();
            socket.end();
            resolve();
          };
          input.on('escape', done);
          input.on('data', (chunk: Buffer) => socket.write(chunk));
          // End of input ends the session: the agent closes its side, and the guest keeps its stdin for the next console.
          input.on('end', () => socket.end());
          socket.on('data', (chunk: Buffer) => process.stdout.write(chunk));
          socket.on('end', done);
          socket.on('close', done);
          socket.on('error', done);
          process.stdin.pipe(input);
          socket.resume();
        });
      }),
    );
}
