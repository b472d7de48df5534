"""test_revoke_waits.py: a revocation waits for the batches in flight,
those of the partitions it takes included.

Their work is applied, their offsets stored and committed, and only then
are the partitions given up: a partition given up earlier would be read
from its watermark by the member taking it over while the old owner still
writes it (the same events applied twice), and librdkafka would refuse the
old owner's offsets. That holds as well for the messages that come out of
the consume call in which librdkafka serves the revocation, queued around
it, when nothing was in flight before them: they are a batch the
revocation waits for, not work done after it.

A second journeyd joins the group and leaves it again, six times, under a
trickle. Redis holds the state writes most of the time (`CLIENT PAUSE
WRITE` 400 ms in every 500), so that batches are in flight at each
revocation; with 40 events in flight at most (`max_inflight`), messages
queue meanwhile, and the revocation meets them. No offset may be refused as no longer
assigned, and Redis ends equal to the fold of every event.
"""
import sys
import threading
import time

import harness
from fold import Fold, check_outcome

CUSTOMERS, EVENTS = 400, 16000
CHUNK, PERIOD = 10, 0.05
REBALANCES = 6
HOLD_MS, EVERY_S = 400, 0.5
CONFIG = """\
max_inflight = 40
drain_timeout_ms = 10000
"""
REFUSED = "not stored:"


def hold_writes(port, stop):
    """CLIENT PAUSE WRITE, HOLD_MS in every EVERY_S, until stop is set."""
    redis = harness.Redis(port)
    while not stop.is_set():
        assert redis("CLIENT", "PAUSE", str(HOLD_MS), "WRITE") == "OK"
        stop.wait(EVERY_S)


def trickle(st, lines, done):
    """CHUNK lines every PERIOD until done is set, then the rest at once:
    a stream that outlasts the rebalances, on a slow machine too."""
    i = 0
    while i < len(lines) and not done.is_set():
        st.produce("touchpoints", lines[i:i + CHUNK])
        i += CHUNK
        time.sleep(PERIOD)
    if i < len(lines):
        st.produce("touchpoints", lines[i:])


def main():
    with harness.Stack(harness.build_dir(), "revoke-waits") as st:
        # some events sent twice, late, tied or without a channel
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 71, "-d", 5)
        fold = Fold(lines)
        config = st.write_config(CONFIG)
        first = st.start_journeyd(config, "journeyd-first.log")
        harness.wait_for("the first to get partitions",
                         lambda: "assigned" in st.journeyd_log(first), 60)
        stop = threading.Event()
        feeder = harness.Feeder(lambda: trickle(st, lines, stop))
        feeder.start()
        holder = harness.Feeder(lambda: hold_writes(st.redis_port, stop))
        holder.start()
        try:
            for i in range(REBALANCES):
                assert feeder.is_alive(), "the stream ended too soon"
                second = st.start_journeyd(config,
                                           "journeyd-second-%d.log" % i)
                harness.wait_for(
                    "the second to get partitions",
                    lambda: "assigned" in st.journeyd_log(second), 60)
                time.sleep(2)       # it applies some
                assert st.stop_journeyd(second) == 0, \
                    st.journeyd_log(second)[-3000:]
                assert REFUSED not in st.journeyd_log(second), \
                    st.journeyd_log(second)[-3000:]
        finally:
            stop.set()
            holder.join()
        feeder.join()
        st.wait_applied(len(lines), [first], timeout=120)
        log = st.journeyd_log(first)
        revoked = log.count("kafka: revoking")
        assert st.stop_journeyd(first) == 0, log[-3000:]
        assert revoked >= REBALANCES, "%d revocations" % revoked
        refused = [l for l in log.splitlines() if REFUSED in l]
        assert not refused, "offsets of partitions already given up:\n" + \
            "\n".join(refused[:10])
        alerts = check_outcome(st, fold, exactly_once=False)
        print("revoke waits: %d revocations with the state writes held; "
              "no offset refused; events checked %d, alerts %d: lost = 0, "
              "doubled = 0" % (revoked, len(lines), len(alerts)))


if __name__ == "__main__":
    sys.exit(main())
