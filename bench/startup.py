#!/usr/bin/python3
"""Start-up-to-ready time: from exec of `segmentd serve` to the first 200 of /readyz.

    startup.py PORT RUNS LOG -- SEGMENTD serve

The server's environment is inherited (SEGMENTD_*). Each run starts the server, polls
/readyz every millisecond (a refused connection costs microseconds), stops it with SIGTERM
and waits for it to exit. Prints the times in milliseconds, one a line.
"""
import http.client
import signal
import subprocess
import sys
import time


def main():
    port, runs, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    with open(log, "ab") as err:
        for _ in range(runs):
            t0 = time.monotonic()
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            ready = None
            while ready is None and time.monotonic() - t0 < 30:
                if p.poll() is not None:
                    sys.exit("startup: segmentd exited with %d before it was ready (see %s)"
                             % (p.returncode, log))
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                try:
                    c.request("GET", "/readyz")
                    if c.getresponse().status == 200:
                        ready = time.monotonic() - t0
                except OSError:
                    pass
                finally:
                    c.close()
                if ready is None:
                    time.sleep(0.001)
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if ready is None:
                sys.exit("startup: segmentd was not ready within 30 s (see %s)" % log)
            print("%.1f" % (ready * 1000), flush=True)


if __name__ == "__main__":
    main()
