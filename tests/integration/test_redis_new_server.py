"""test_redis_new_server.py: journeyd tells a restarted Redis from the
one it was connected to, even when its first tries to reconnect fail
halfway.

What a restarted Redis lost of its last second, journeyd applies again
from the watermarks; but its event clocks and its sweeps of the deadline
indexes may have counted on writes that are gone, so it starts them
again when the server's run_id changed (deadlines_redis_ready). The run_id
to compare with is that of the last connection that became ready: a
writer whose setup was answered while its reader then failed wrote
nothing. journeyd used to record the run_id of such a writer, and the
connection that then became ready took the restarted server for the
same one.

journeyd reaches Redis through a relay (in this test) that can hold the
reader: a connection whose first command is a PING (the reader's first;
the writer's is SCRIPT LOAD) is accepted and never answered, so the
reader runs out of redis.timeout_ms after the writer is set up.

1. journeyd's connections killed by Redis: it connects again to the same
   server, and does not say it is a new one.
2. Redis killed and started again (same port and data, a new run_id)
   while the relay holds the readers: journeyd times out on the reader,
   more than once; once the relay lets readers through, it connects again
   "to a new server process".
"""
import socket
import sys
import threading

import harness

TIMEOUT_MS = 500
NEW_SERVER = "to a new server process"
HELD = "waiting on the reader"


def pump(src, dst):
    """Copies src to dst until either side closes; then closes both."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Relay:
    """A TCP relay to Redis on port that holds readers while asked to."""

    def __init__(self, port):
        self.port = port
        self.hold_readers = False
        self.held = []      # kept open, never answered
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            threading.Thread(target=self.serve, args=(client,),
                             daemon=True).start()

    def serve(self, client):
        first = client.recv(65536)
        if self.hold_readers and first.startswith(b"*1\r\n$4\r\nPING\r\n"):
            self.held.append(client)
            return
        try:
            server = socket.create_connection(("127.0.0.1", self.port), 5)
            server.settimeout(None)
            server.sendall(first)
        except OSError:     # Redis is down: so is this connection
            client.close()
            return
        threading.Thread(target=pump, args=(server, client),
                         daemon=True).start()
        pump(client, server)


def main():
    with harness.Stack(harness.build_dir(), "redisnew") as st:
        relay = Relay(st.redis_port)
        config = st.write_config("redis.timeout_ms = %d\n" % TIMEOUT_MS)
        with open(config) as f:
            lines = [l for l in f if not l.startswith("redis ")]
        with open(config, "w") as f:
            f.writelines(lines)
            f.write("redis = %s\n" % relay.address)
        jd = st.start_journeyd(config)

        def log():
            assert jd.poll() is None, st.journeyd_log(jd)[-2000:]
            return st.journeyd_log(jd)

        def reconnections():
            return [l for l in log().splitlines()
                    if "redis: connected again" in l]

        def connected_again(before, new_server):
            """Waits for a reconnection after the before first ones, to a
            new server or not."""
            harness.wait_for(
                "journeyd connected again" + (", to a new server" if
                                              new_server else ""),
                lambda: any((NEW_SERVER in l) == new_server
                            for l in reconnections()[before:]), 60,
                show=lambda: reconnections()[before:])

        st.produce_events([{"customer_id": "c%d" % i, "type": "ad_click",
                            "event_id": "e%d" % i,
                            "ts": "2026-03-01T10:00:%02dZ" % i}
                           for i in range(10)])
        st.wait_applied(10, [jd])

        # 1. the same server again
        before = len(reconnections())
        st.redis("CLIENT", "KILL", "TYPE", "normal")
        connected_again(before, False)
        assert not any(NEW_SERVER in l for l in reconnections()), log()

        # 2. a new server, reached at the third try or later
        relay.hold_readers = True
        held_before = log().count(HELD)
        before = len(reconnections())
        st.kill_redis()
        st.start_redis()
        harness.wait_for("the reader held twice", lambda: log().count(HELD)
                         >= held_before + 2, 60)
        relay.hold_readers = False
        connected_again(before, True)

        st.produce_events([{"customer_id": "c%d" % i, "type": "product_view",
                            "event_id": "f%d" % i,
                            "ts": "2026-03-01T11:00:%02dZ" % i}
                           for i in range(10)])
        st.wait_applied(20, [jd])
        held = log().count(HELD) - held_before
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
        print("reconnected to the same Redis: not a new server; to a Redis "
              "restarted meanwhile, after %d tries whose reader was held: "
              "a new server process" % held)


if __name__ == "__main__":
    sys.exit(main())
