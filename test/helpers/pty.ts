import { spawnSync } from 'node:child_process';

// runs `sh -c CMD` on a pty of COLS x ROWS; once TEXT has been read COUNT times, sends KEY (if
// any); prints all it read, EXIT=<status> and then whatever AFTER prints (on the same pty)
const PTY = `
import os, pty, select, sys, time
cmd, size, after, key, text, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode('latin1'), sys.argv[5].encode('latin1'), int(sys.argv[6])
pid, fd = pty.fork()
if pid == 0:
    cols, rows = size.split('x')
    os.execvp('sh', ['sh', '-c', 'stty cols ' + cols + ' rows ' + rows + '; ' + cmd + '; echo EXIT=$?; ' + after])
out, sent, end = b'', not key, time.time() + 60
while time.time() < end:
    if select.select([fd], [], [], 0.1)[0]:
        try:
            d = os.read(fd, 65536)
        except OSError:
            break
        if not d:
            break
        out += d
    if not sent and out.count(text) >= count:
        os.write(fd, key)
        sent = True
os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
`;

/** What `cmd` wrote on a terminal (a pty, python3's), read as latin1 (escape sequences kept byte for byte). */
export function onPty(cmd: string, o: { size?: string; after?: string; key?: string; when?: { text: string; count: number } } = {}): string {
  const args = [cmd, o.size ?? '120x30', o.after ?? ':', o.key ?? '', o.when?.text ?? '', String(o.when?.count ?? 0)];
  return spawnSync('python3', ['-c', PTY, ...args], { encoding: 'latin1', timeout: 90_000 }).stdout;
}
