"""Sandbox launcher: runs as its own process (``python -I -S sandbox_launcher.py CONFIG_JSON``).

It is started by :class:`tools.sandbox.Sandbox` and never imported. Doing the setup in a fresh
interpreter instead of a ``preexec_fn`` keeps ``Sandbox.run`` safe to call from many threads.

Steps:
1. ``unshare`` new mount, PID and (unless network is allowed) network namespaces; when not root,
   a user namespace too. The new network namespace has only a loopback device (brought up), so
   nothing outside the sandbox is reachable.
2. fork: the child becomes PID 1 of the new PID namespace, so when it exits or is killed every
   process it left behind is killed by the kernel (no escaped daemons).
3. child: private mounts; tmpfs over /tmp, /var/tmp, /dev/shm and over any directory that the
   sandbox user could not traverse but that holds an exposed path (the Python installation, the
   working directory), which is then bind-mounted back at the same path (read-only except the
   working directory); a fresh /proc; rlimits; drop to the sandbox uid/gid; parent-death signal;
   exec the target with the scrubbed environment.
4. parent: wait for the child and write ``{"status": wait_status, "cpu": seconds}`` to the
   status pipe. Setup failures are written as ``{"error": message}``.

Only the standard library is used; the config is a JSON object built by ``tools.sandbox``.
"""
import ctypes
import fcntl
import json
import os
import resource
import select
import signal
import socket
import struct
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38  # setuid binaries and file capabilities grant nothing after exec
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
SETUP_FAILED = 125

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _loopback_up() -> None:
    """Bring up ``lo`` in the new network namespace (sandboxed code may still use localhost)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))
        flags = struct.unpack("16sH14x", ifreq)[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _blocked_ancestor(path: str) -> str | None:
    """The outermost strict ancestor of ``path`` that "others" cannot traverse, if any."""
    parts = path.strip("/").split("/")[:-1]
    current = ""
    for part in parts:
        current += "/" + part
        if not os.stat(current).st_mode & 0o001:
            return current
    return None


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _setup_filesystem(cfg: dict) -> None:
    """Private /tmp, /var/tmp, /dev/shm, hidden private directories, exposed paths, new /proc."""
    exposed = [(p, False) for p in cfg["expose_ro"]] + [(cfg["cwd"], True)]
    masks = [d for d in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(d)]
    if cfg["uid"] is not None:
        masks += [a for p, _ in exposed if (a := _blocked_ancestor(p)) is not None]
    masks = sorted({m for m in masks if not any(_under(m, o) and m != o for o in masks)})
    fds = [(p, rw, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p, rw in exposed]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    size = cfg["tmpfs_bytes"]
    for mask in masks:
        _mount("tmpfs", mask, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777" if mask in
               ("/tmp", "/var/tmp", "/dev/shm") else f"size={size},mode=0755")
    for path, rw, fd in sorted(fds, key=lambda item: len(item[0])):
        if any(_under(path, m) for m in masks):
            os.makedirs(path, mode=0o755, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            if not rw:
                _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)
        os.close(fd)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _set_limits(limits: dict) -> None:
    cpu = limits["cpu"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))  # PID 1 ignores SIGXCPU: hard limit kills
    resource.setrlimit(resource.RLIMIT_AS, (limits["as"], limits["as"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fsize"], limits["fsize"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["nofile"], limits["nofile"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child(cfg: dict, status_fd: int, lifeline: int) -> None:
    """Runs as PID 1 of the new PID namespace; never returns."""
    try:
        os.set_inheritable(status_fd, False)
        if cfg["namespaces"]:
            _setup_filesystem(cfg)
        _set_limits(cfg["limits"])
        if cfg["uid"] is not None:
            os.setgroups([])
            os.setgid(cfg["gid"])
            os.setuid(cfg["uid"])
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        if select.select([lifeline], [], [], 0)[0]:  # launcher died before PDEATHSIG was set
            os._exit(SETUP_FAILED)
        os.close(lifeline)
        os.chdir(cfg["cwd"])
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        try:
            os.execvpe(cfg["argv"][0], cfg["argv"], cfg["env"])
        except FileNotFoundError:
            raise FileNotFoundError(f"command not found: {cfg['argv'][0]}") from None
    except BaseException as exc:  # report every setup failure, then exit without cleanup
        message = f"{type(exc).__name__}: {exc}"
        os.write(status_fd, (json.dumps({"error": message}) + "\n").encode())
        os._exit(SETUP_FAILED)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    status_fd = cfg["status_fd"]
    if cfg["namespaces"]:
        flags = CLONE_NEWNS | CLONE_NEWPID | (0 if cfg["network"] else CLONE_NEWNET)
        uid, gid = os.getuid(), os.getgid()
        try:
            _unshare(flags | (0 if uid == 0 else CLONE_NEWUSER))
            if uid != 0:
                _write("/proc/self/setgroups", "deny")
                _write("/proc/self/uid_map", f"0 {uid} 1")
                _write("/proc/self/gid_map", f"0 {gid} 1")
            if not cfg["network"]:
                _loopback_up()
        except OSError as exc:
            os.write(status_fd, (json.dumps({"error": f"cannot isolate: {exc}"}) + "\n").encode())
            sys.exit(SETUP_FAILED)
    lifeline, keepalive = os.pipe()  # EOF on `lifeline` means this launcher has died
    pid = os.fork()
    if pid == 0:
        os.close(keepalive)
        _child(cfg, status_fd, lifeline)
    os.close(lifeline)
    _, status, usage = os.wait4(pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    os.write(status_fd, (json.dumps({"status": status, "cpu": cpu}) + "\n").encode())


if __name__ == "__main__":
    main()
