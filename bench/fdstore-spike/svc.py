#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Spike service: what systemd 252's fd store does with names, batches and connections.
import array, os, socket, signal
def log(*a): print(*a, flush=True)
def notify(msg, fds=()):
    p = os.environ["NOTIFY_SOCKET"]
    if p.startswith("@"): p = "\0" + p[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        if fds: return s.sendmsg([msg.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", list(fds)))], 0, p)
        return s.sendto(msg.encode(), p)
    finally: s.close()
names = os.environ.get("LISTEN_FDNAMES", "")
n = int(os.environ.get("LISTEN_FDS", "0"))
log(f"start pid={os.getpid()} LISTEN_FDS={n} len(LISTEN_FDNAMES)={len(names)} first={names[:60]!r}")
mode = open("/srv/spike/mode").read().strip()
fds = {nm: 3 + i for i, nm in enumerate(names.split(":")) if names}
if mode == "many":
    N = int(open("/srv/spike/count").read())
    L = int(open("/srv/spike/namelen").read())
    sent = 0
    for b in range(0, N, 253):
        batch = [os.memfd_create("x") for _ in range(min(253, N - b))]
        msg = "FDSTORE=1\n" + "".join(f"FDNAME={(str(b+i)+'-').ljust(L,'n')[:L]}\n" for i in range(len(batch)))
        # one FDNAME per message applies to all fds: send one message per fd so names differ
        for i, fd in enumerate(batch):
            notify(f"FDSTORE=1\nFDNAME={(str(b+i)+'-').ljust(L,'n')[:L]}", [fd])
            os.close(fd); sent += 1
    log(f"stored {sent} fds with names of {L} chars")
elif mode == "colon":
    fd = os.memfd_create("c")
    log("send FDNAME=a:b ->", notify("FDSTORE=1\nFDNAME=a:b", [fd]))
    fd2 = os.memfd_create("d")
    log("send FDNAME=ok ->", notify("FDSTORE=1\nFDNAME=ok", [fd2]))
elif mode == "254":
    for k in (253, 254):
        batch = [os.memfd_create("b") for _ in range(k)]
        try: log(f"sendmsg with {k} fds ->", notify(f"FDSTORE=1\nFDNAME=b{k}", batch))
        except OSError as e: log(f"sendmsg with {k} fds -> {e!r}")
        for f in batch: os.close(f)
elif mode == "conn":
    if "c1" in fds:
        cfd = fds["c1"]
        log("adopted c1 fd", cfd, "peer", socket.socket(fileno=os.dup(cfd)).getpeername())
        os.close(cfd)
        log("closed c1 without FDSTOREREMOVE")
        if os.path.exists("/srv/spike/remove"):
            log("FDSTOREREMOVE ->", notify("FDSTOREREMOVE=1\nFDNAME=c1"))
    else:
        ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 7777)); ls.listen(); open("/run/spike-listening", "w").close()
        c, _ = ls.accept()
        log("stored c1 ->", notify("FDSTORE=1\nFDNAME=c1", [c.fileno()]))
        c.close(); ls.close()
notify("READY=1")
si = signal.sigwaitinfo({signal.SIGTERM}) if signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}) is not None else None
line = f"si_pid={si.si_pid} si_code={si.si_code} ppid={os.getppid()} env_keys={sorted(k for k in os.environ if k != 'LISTEN_FDNAMES')}"
open("/srv/spike/sigterm.log", "a").write("SIGTERM: " + line + "\n")
log("SIGTERM: " + line)
