"""Run a command that dies with the process that started it.

    python child_exec.py PARENT_PID COMMAND [ARG...]

Sets PR_SET_PDEATHSIG (SIGKILL) on itself, checks the parent is still PARENT_PID (it may have died
before the setting took), then execs COMMAND, which keeps the setting. The supervisor starts the
native model server through this, so a `kill -9` of the app takes its model server with it
instead of leaving an orphan holding the port. Standalone (imports nothing from the app), so it
costs one small interpreter start.
"""
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    parent, argv = int(sys.argv[1]), sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        sys.exit(f"child_exec: prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:
        sys.exit("child_exec: the parent process is gone")
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
