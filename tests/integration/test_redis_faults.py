"""test_redis_faults.py: Redis killed and frozen mid-stream; journeyd
notices by itself, pauses, reconnects, resumes, and loses and doubles
nothing.

Under a steady stream: redis-server is killed with SIGKILL and restarted on
the same port and data (AOF, appendfsync everysec); later it is frozen with
SIGSTOP for four times redis.timeout_ms and then continued; later its ACL
refuses journeyd's loads (GET) for a while. journeyd must
detect both with its own deadline timer (hiredis 0.14 has none), stay up,
keep its memory bounded while Redis is away, and in the end Redis must equal
the fold of every event, with every stage change alerted at least once and
repeats sharing their alert_id. Last, Redis is emptied (as one started
afresh, or restored from before any write) and journeyd started again:
with no watermark in Redis it applies every partition from its start,
not from Kafka's committed offset, and Redis equals the fold again.
"""
import signal
import sys
import time

import harness
from fold import Fold, check_outcome

CUSTOMERS, EVENTS = 1500, 30000
CHUNK, PERIOD = 250, 0.25  # about 1000 events/s
TIMEOUT_MS = 500


def main():
    with harness.Stack(harness.build_dir(), "redisfaults") as st:
        # some events sent twice, late, tied or without a channel
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 31, "-d", 5)
        fold = Fold(lines)
        config = st.write_config("redis.timeout_ms = %d\n" % TIMEOUT_MS)
        jd = st.start_journeyd(config)

        feeder = st.feed(lines, CHUNK, PERIOD)

        st.wait_applied(4000, [jd])
        rss_before = st.rss_kb(jd)
        rss_away = []

        def away(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                assert jd.poll() is None, st.journeyd_log(jd)[-2000:]
                rss_away.append(st.rss_kb(jd))
                time.sleep(0.1)

        st.kill_redis()
        away(3.0)
        st.start_redis()
        before = st.applied_offsets()
        st.wait_applied(min(before + 3000, len(lines)), [jd])

        st.signal_redis(signal.SIGSTOP)
        away(4 * TIMEOUT_MS / 1000.0)
        st.signal_redis(signal.SIGCONT)

        # Redis answers the loads with an error (an ACL here; BUSY or
        # LOADING alike): Redis's trouble, not the customers'
        before = st.applied_offsets()
        st.wait_applied(min(before + 2000, len(lines)), [jd])
        st.redis("ACL", "SETUSER", "default", "-get")
        harness.wait_for("a load refused", lambda: "cannot load a customer: "
                         "NOPERM" in st.journeyd_log(jd), 60)
        # refusals in the 2 s after this one was seen: the backoff only
        # grows, so a stall of the test before or during them can only
        # make them fewer
        def refusals():
            log = st.journeyd_log(jd)
            return log.count("NOPERM") + log.count("can't run this command")
        seen_at, seen = time.monotonic(), refusals()
        refused = 1
        while time.monotonic() < seen_at + 2.0:
            now = refusals()
            if time.monotonic() <= seen_at + 2.0:
                refused = 1 + now - seen
            away(0.1)
        st.redis("ACL", "SETUSER", "default", "+get")

        feeder.join()
        st.wait_applied(len(lines), [jd], timeout=300)
        rc = st.stop_journeyd(jd)
        log = st.journeyd_log(jd)
        assert rc == 0, "journeyd exited %d:\n%s" % (rc, log[-3000:])
        for sign in ("redis: connection lost", "no reply within "
                     "redis.timeout_ms", "redis: connected again"):
            assert sign in log, "log lacks %r:\n%s" % (sign, log[-3000:])
        # refused at each reconnect (a load, or the state script's own
        # GET): the backoff, grown by the outages before, goes on growing
        # (a few tries in 2 s; twenty if it started afresh at each
        # connect)
        assert refused <= 6, "%d refusals:\n%s" % (refused, log[-3000:])

        alerts = check_outcome(st, fold, exactly_once=False)

        # Redis started empty (or restored from before any write): no
        # watermark, whatever Kafka committed, so every event is applied
        # again from the start of each partition, and the state is the
        # same fold (at the default redis.timeout_ms: a Redis stalled
        # past 500 ms by a slow disk would make it rewind, to watermarks
        # by then)
        st.redis("FLUSHALL")
        jd = st.start_journeyd(st.write_config(name="afresh.conf"))
        st.wait_applied(len(lines), [jd], timeout=300)
        assert st.stop_journeyd(jd) == 0
        assert "resumes at" not in st.journeyd_log(jd)
        check_outcome(st, fold, exactly_once=False)
        peak = max(rss_away)
        assert peak < rss_before * 2 + 64 * 1024, \
            "memory grew while Redis was away: %d kB -> %d kB" % (
                rss_before, peak)
        print("redis outages survived 2 (kill -9 + restart, SIGSTOP %d ms); "
              "journeyd RSS %d kB before, %d kB at most while away; "
              "events checked %d, alerts %d for %d transitions: lost = 0, "
              "doubled = 0" % (4 * TIMEOUT_MS, rss_before, peak, len(lines),
                               len(alerts), len(set(fold.transitions))))


if __name__ == "__main__":
    sys.exit(main())
