#!/usr/bin/env python3
"""runc wrapper for sandboxes whose capability bounding set lacks some capabilities.

dockerd is given this as its default runtime by dockerd-up.sh. On `create`/`run` it edits the
bundle's config.json, and on `exec` the --process file, removing only the capabilities the host's
bounding set (/proc/self/status CapBnd) lacks; everything else is passed to runc unchanged. On a
machine with a full bounding set it changes nothing, so `--privileged` containers (KIND nodes) and
`docker exec --privileged` work the same here as on a normal host. Never used by imgtool itself.
"""
import json
import os
import sys

NAMES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
         "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
         "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
         "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
         "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
         "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
RUNC = os.environ.get("IMGTOOL_REAL_RUNC", "/usr/bin/runc")


def missing_caps():
    bnd = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                bnd = int(line.split()[1], 16)
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read().strip())
    except OSError:
        last = len(NAMES) - 1
    return {"CAP_" + n for i, n in enumerate(NAMES) if i <= last and not (bnd >> i) & 1}


def strip(caps_obj, missing):
    if not isinstance(caps_obj, dict):
        return False
    changed = False
    for key, vals in caps_obj.items():
        if isinstance(vals, list):
            kept = [c for c in vals if c not in missing]
            if len(kept) != len(vals):
                caps_obj[key] = kept
                changed = True
    return changed


def edit(path, missing, is_process):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return
    proc = doc if is_process else doc.get("process", {})
    if strip(proc.get("capabilities"), missing):
        tmp = path + ".capstmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, path)


def value_of(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
    return None


def main():
    args = sys.argv[1:]
    missing = missing_caps()
    if missing:
        cmd = next((a for a in args if a in ("create", "run", "exec")), None)
        if cmd in ("create", "run"):
            bundle = value_of(args, "--bundle") or value_of(args, "-b") or os.getcwd()
            edit(os.path.join(bundle, "config.json"), missing, False)
        elif cmd == "exec":
            proc = value_of(args, "--process") or value_of(args, "-p")
            if proc:
                edit(proc, missing, True)
    os.execv(RUNC, [RUNC] + args)


main()
