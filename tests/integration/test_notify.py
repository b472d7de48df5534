"""test_notify.py: journeyd tells its service manager what it does.

The test plays systemd: it binds its own AF_UNIX datagram socket and
starts journeyd with NOTIFY_SOCKET pointing there and WATCHDOG_USEC set.
It must see READY=1 (Redis ready and the consumer open), STATUS= lines
that follow the counters, WATCHDOG=1 pings, RELOADING=1 and then READY=1
again around a SIGHUP, and STOPPING=1 after SIGTERM. With Redis frozen
(and redis.timeout_ms longer than the test, so journeyd keeps waiting)
while events are in flight, the pipeline is wedged: the pings must stop,
and come back once Redis runs again. Meanwhile a reload waits for the
work in flight, and a second one, refused, does not say READY=1: that
comes once the first is in force.
"""
import json
import os
import signal
import socket
import sys
import threading
import time

import harness

WATCHDOG_USEC = 2000000


class Manager:
    """Collects the datagrams journeyd sends, with when they came."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, one "KEY=value" line)
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            now = time.monotonic()
            with self.lock:
                self.messages += [(now, l) for l in
                                  data.decode().splitlines()]

    def lines(self):
        with self.lock:
            return [l for _, l in self.messages]

    def index(self, line, after=-1):
        """Index of the first message equal to line after index after."""
        for i, l in enumerate(self.lines()):
            if i > after and l == line:
                return i
        return None

    def last(self, prefix):
        with self.lock:
            found = [(t, l) for t, l in self.messages if l.startswith(prefix)]
        return found[-1] if found else (None, None)

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()


def events(customers, etype, ts):
    return ["%s\t%s" % (c, json.dumps({"customer_id": c, "type": etype,
                                       "ts": ts})) for c in customers]


def main():
    with harness.Stack(harness.build_dir(), "notify") as st:
        mgr = Manager(os.path.join(st.tmp, "notify.sock"))
        config = st.write_config("redis.timeout_ms = 600000\n")
        jd = st.start_journeyd(config, env={
            "NOTIFY_SOCKET": mgr.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)})

        def alive():
            assert jd.poll() is None, st.journeyd_log(jd)[-3000:]
            return True

        def seen(what, cond):
            return harness.wait_for(what, lambda: alive() and cond(), 60)

        def index(what, line, after=-1):
            return seen(what, lambda: (mgr.index(line, after),)
                        if mgr.index(line, after) is not None else None)[0]

        ready = index("READY=1", "READY=1")
        index("a watchdog ping", "WATCHDOG=1")
        batch = ["c-%d" % i for i in range(200)]
        st.produce("touchpoints", events(batch, "ad_click", 1767225600000))
        st.wait_applied(len(batch), [jd])
        status = seen("STATUS with the events applied", lambda: [
            l for l in mgr.lines() if l.startswith("STATUS=events applied "
                                                   "200, in flight 0")])
        assert "Redis up" in status[-1], status[-1]

        jd.send_signal(signal.SIGHUP)
        reloading = index("RELOADING=1", "RELOADING=1")
        assert reloading > ready
        index("READY=1 after the reload", "READY=1", reloading)

        # wedged: work in flight that cannot move
        st.signal_redis(signal.SIGSTOP)
        st.produce("touchpoints", events(batch, "product_view",
                                         1767225660000))
        seen("journeyd to withhold the pings",
             lambda: "watchdog pings withheld" in st.journeyd_log(jd))
        seen("no watchdog ping for a whole interval", lambda:
             time.monotonic() - mgr.last("WATCHDOG=1")[0] >
             1.5 * WATCHDOG_USEC / 1e6)
        stalled_at = time.monotonic()
        # a reload waits for the work in flight; a second one, refused,
        # must not say READY=1 while the first still waits
        jd.send_signal(signal.SIGHUP)
        waiting = index("RELOADING=1 of a reload that waits",
                        "RELOADING=1", reloading)
        seen("the reload to wait", lambda: "reload waits for" in
             st.journeyd_log(jd))
        with open(config, "a") as f:
            f.write("no_such_key = 1\n")
        jd.send_signal(signal.SIGHUP)
        refused = index("RELOADING=1 of a refused reload", "RELOADING=1",
                        waiting)
        seen("the reload refused", lambda: "reload refused" in
             st.journeyd_log(jd))
        time.sleep(1)   # what it would have sent with it, to arrive
        assert mgr.index("READY=1", waiting) is None, mgr.lines()[waiting:]
        st.signal_redis(signal.SIGCONT)
        seen("the pings to resume", lambda:
             mgr.last("WATCHDOG=1")[0] > stalled_at)
        index("READY=1 once the first reload is in force", "READY=1",
              refused)
        st.wait_applied(2 * len(batch), [jd])

        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-3000:]
        harness.wait_for("STOPPING=1",
                         lambda: mgr.index("STOPPING=1") is not None, 10)
        mgr.close()
        kinds = sorted({l.split("=", 1)[0] for l in mgr.lines()})
        print("sd_notify seen: %s; READY after reload, pings withheld "
              "while Redis was frozen with events in flight and resumed "
              "after, STOPPING on SIGTERM" % ", ".join(kinds))


if __name__ == "__main__":
    sys.exit(main())
