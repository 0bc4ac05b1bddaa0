#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""README's shell examples, run as written against a real server.

Every ```sh block of README.md that runs the server (`make run`) or talks to it
(`localhost:8080`) is run with bash in one scratch directory, in README's order:
- `make run [LISTEN=...] [ARGS='...']` starts the built txstats-server with those ARGS on a free
  loopback port (the build itself is the test suite's job); other `make` lines are skipped;
- a block without `make run` gets a fresh server with no options;
- `localhost:8080` and `127.0.0.1:8080` become the server's address;
- every curl must get a success status (2xx; `--fail-with-body`), a streaming one (`-N`) its
  first event within 2 s;
- a comment that follows a command and starts with `# {` is the command's expected output:
  compared without white space, `...` matching anything.

usage: check_readme.py PATH-TO-txstats-server PATH-TO-README.md
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN, README = os.path.abspath(sys.argv[1]), sys.argv[2]
MARK = "@@readme-command@@"
CURL = r"""
curl() {
    case " $* " in
    *" -N "*) rc=0; command curl -sS --fail-with-body --max-time 2 "$@" || rc=$?
              [ "$rc" -ne 28 ] || rc=0; return "$rc" ;;
    *) command curl -sS --fail-with-body "$@" ;;
    esac
}
"""


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def blocks(text):
    """(line number, body) of each sh block that runs or talks to the server."""
    for m in re.finditer(r"^```sh\n(.*?)^```", text, re.S | re.M):
        body = m.group(1)
        if "localhost:8080" in body or "127.0.0.1:8080" in body or "make run" in body:
            yield text[: m.start()].count("\n") + 1, body


def commands(body):
    """Split a block into (command, expected output or None); continuation lines (a trailing
    backslash or pipe) belong to their command."""
    out, cur, lines = [], "", body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        cur += line + "\n"
        if line.rstrip().endswith("\\") or line.rstrip().endswith("|"):
            continue
        expected = None
        if i < len(lines) and lines[i].startswith("# {"):
            expected = ""
            while i < len(lines) and lines[i].startswith("#"):
                expected += lines[i][1:]
                i += 1
        out.append((cur, expected))
        cur = ""
    return out


class Server:
    def __init__(self, work, args, env):
        self.port_file = os.path.join(work, "port")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        data = tempfile.mkdtemp(prefix="data-", dir=work)
        self.err = open(os.path.join(work, "server.err"), "w")
        argv = [BIN, "--listen", "127.0.0.1:0", "--port-file", self.port_file, "--data-dir", data]
        self.proc = subprocess.Popen(argv + args, cwd=work, env=env, stderr=self.err)
        for _ in range(500):
            if os.path.exists(self.port_file) and open(self.port_file).read().strip():
                self.port = int(open(self.port_file).read())
                return
            if self.proc.poll() is not None:
                fail("the server did not start with %s (exit %d)" % (args, self.proc.returncode))
            time.sleep(0.02)
        fail("the server did not start within 10 s")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.err.close()
        if rc != 0:
            fail("the server exited %d" % rc)


def make_run(cmd):
    """The server's arguments and environment of a `make run` line."""
    words = shlex.split(cmd, comments=True)
    env, args = dict(os.environ), []
    while words and re.match(r"^[A-Z_]+=", words[0]):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    for w in words[2:]:
        if w.startswith("ARGS="):
            args += shlex.split(w[5:])
    return args, env


def matches(expected, got):
    want = re.sub(r"\s+", "", expected)
    have = re.sub(r"\s+", "", got)
    pattern = ".*".join(re.escape(p) for p in want.split("..."))
    return re.fullmatch(pattern, have) is not None


def run_commands(work, line, cmds, server):
    """Run commands in one bash against the server (None: no server); check their outputs."""
    script, checks = CURL + "set -e\n", []
    for n, cmd, expected in cmds:
        script += "printf '\\n%s %d\\n'\n%s" % (MARK, n, cmd)
        checks.append((n, cmd, expected))
    if server is not None:
        addr = "127.0.0.1:%d" % server.port
        script = script.replace("localhost:8080", addr).replace("127.0.0.1:8080", addr)
    script += "printf '\\n%s end\\n'\n" % MARK
    r = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True)
    if server is not None:
        server.stop()
    parts = re.split(r"\n%s (\S+)\n" % MARK, "\n" + r.stdout)
    outputs = dict(zip(parts[1::2], parts[2::2]))
    if r.returncode != 0 or "end" not in outputs:
        last = parts[-2] if len(parts) > 2 else "?"
        fail("README line %d: command %s failed (exit %d)\n%s\n%s" %
             (line, last, r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
    for n, cmd, expected in checks:
        got = outputs.get(str(n), "")
        if "-N " in cmd and "data:" not in got:
            fail("README line %d: no event from %s" % (line, cmd.strip()))
        if expected is not None and not matches(expected, got):
            fail("README line %d: %s\n got  %s\n want %s" % (line, cmd.strip(), got.strip(),
                                                            expected.strip()))
    return len(checks), sum(e is not None for _, _, e in checks)


def run_block(work, line, body):
    """Commands before the block's first `make run` run without a server (they prepare it, as
    the token does); each `make run` starts a server for the commands after it."""
    segments = [[None, []]]
    for n, (cmd, expected) in enumerate(commands(body)):
        if re.match(r"^([A-Z_]+=\S+\s+)*make\s+run\b", cmd):
            segments.append([cmd, []])
        elif cmd.startswith("make "):
            print("  skipped: " + cmd.strip())
        else:
            segments[-1][1].append((n, cmd, expected))
    ran = checked = 0
    for make, cmds in segments:
        if make is None and len(segments) > 1:
            server = None
        elif make is None:
            server = Server(work, [], dict(os.environ))
        else:
            server = Server(work, *make_run(make))
        if make is None and not cmds:
            continue
        a, b = run_commands(work, line, cmds, server)
        ran, checked = ran + a, checked + b
    print("README line %d: %d servers, %d commands, %d outputs checked: ok" %
          (line, max(len(segments) - 1, 1), ran, checked))


def main():
    if not shutil.which("curl"):
        print("no curl: skipped")
        return 77
    work = tempfile.mkdtemp(prefix="txstats-readme-")
    try:
        n = 0
        for line, body in blocks(open(README).read()):
            run_block(work, line, body)
            n += 1
        if n < 5:
            fail("only %d examples found in %s" % (n, README))
        print("readme: %d blocks ok" % n)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
