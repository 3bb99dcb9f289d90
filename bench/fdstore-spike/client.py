# SPDX-License-Identifier: MIT
import socket, sys, time
s = socket.create_connection(("127.0.0.1", 7777))
open("/run/spike-client-connected","w").close()
s.settimeout(float(sys.argv[1]))
t0 = time.time()
try:
    d = s.recv(10)
    print("client: recv ->", repr(d), "(EOF)" if d == b"" else "", "after %.1f s" % (time.time()-t0), flush=True)
except socket.timeout:
    print("client: no EOF within %.0f s (connection still open)" % (time.time()-t0), flush=True)
