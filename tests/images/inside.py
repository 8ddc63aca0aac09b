"""Run inside a container (`python -c`): what its process is and may do, as JSON on stdout.

Every directory outside /proc and /sys is tried for writing, so "only /tmp is writable" is a
finding, not an assumption. Limits are read from the container's own cgroup (v1 or v2).
"""

import json
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def status(name: str) -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def writable_dirs() -> tuple[list[str], dict[str, str]]:
    found, errors = [], {}
    for top, dirs, _ in os.walk("/"):
        if top == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys")]
        probe = os.path.join(top, ".write-probe")
        try:
            os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except OSError as e:
            if top in ("/", "/tmp", "/opt/videopipe"):
                errors[top] = e.strerror or str(e)
            continue
        os.unlink(probe)
        found.append(top)
    return found, errors


def termination_log_writable() -> bool:
    try:
        with open("/dev/termination-log", "a"):
            return True
    except OSError:
        return False


def memory_limit() -> int | None:
    for path in (CGROUP / "memory.max", CGROUP / "memory" / "memory.limit_in_bytes"):
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            continue
    return None


def cpu_quota() -> float | None:
    try:
        quota, period = (CGROUP / "cpu.max").read_text().split()
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for folder in (CGROUP / "cpu", CGROUP / "cpu,cpuacct"):
        try:
            quota = int((folder / "cpu.cfs_quota_us").read_text())
            return quota / int((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
    return None


dirs, errors = writable_dirs()
if termination_log_writable():
    dirs.append("/dev/termination-log")
print(
    json.dumps(
        {
            "uid": os.getuid(),
            "gid": os.getgid(),
            "groups": os.getgroups(),
            "cap_eff": int(status("CapEff"), 16),
            "cap_bnd": int(status("CapBnd"), 16),
            "no_new_privs": int(status("NoNewPrivs")),
            "seccomp": int(status("Seccomp")),
            "writable": sorted(dirs),
            "write_errors": errors,
            "memory_limit": memory_limit(),
            "cpu_quota": cpu_quota(),
        }
    )
)
