"""test_drain.py: backpressure and the drain deadline.

With Redis frozen (SIGSTOP, and a redis.timeout_ms longer than the test so
journeyd keeps waiting instead of reconnecting), journeyd must stop
consuming at max_inflight events instead of buffering the backlog; SIGTERM
must then give up after drain_timeout_ms with a non-zero exit and without
committing the offsets of the unfinished work. Once Redis runs again, a new
journeyd applies everything: nothing lost, nothing doubled.
"""
import re
import signal
import sys
import time

import harness
from fold import Fold, check_outcome

MAX_INFLIGHT, DRAIN_MS = 300, 1500


def main():
    with harness.Stack(harness.build_dir(), "drain") as st:
        lines = st.loadgen("-c", 800, "-n", 12000, "-s", 53)
        fold = Fold(lines)
        config = st.write_config(
            "max_inflight = %d\nbatch_max = 100\ndrain_timeout_ms = %d\n"
            "redis.timeout_ms = 600000\n" % (MAX_INFLIGHT, DRAIN_MS),
            http=True)
        jd = st.start_journeyd(config)
        st.produce("touchpoints", lines[:4000])
        st.wait_applied(4000, [jd])

        st.signal_redis(signal.SIGSTOP)
        st.produce("touchpoints", lines[4000:])

        def inflight_now():
            return st.metrics()["journeyd_inflight_events"][frozenset()]
        harness.wait_for("the events in flight to reach the bound",
                         lambda: inflight_now() >= MAX_INFLIGHT - 100, 60)
        time.sleep(1)  # time to run ahead, if it were to
        assert inflight_now() <= MAX_INFLIGHT
        t0 = time.monotonic()
        rc = st.stop_journeyd(jd)
        took = time.monotonic() - t0
        log = st.journeyd_log(jd)
        m = re.search(r"stopping; draining (\d+) events in flight", log)
        assert m, log[-2000:]
        inflight = int(m.group(1))
        assert 0 < inflight <= MAX_INFLIGHT, \
            "%d events in flight, bound %d" % (inflight, MAX_INFLIGHT)
        assert rc == 1, "journeyd exited %d past the drain deadline" % rc
        assert "drain deadline passed" in log

        st.signal_redis(signal.SIGCONT)
        # no offset stored past what Redis holds
        committed, applied = st.committed(), st.committed_as_applied()
        assert all(committed[p] <= applied[p] for p in committed), \
            (committed, applied)
        jd2 = st.start_journeyd(config)
        st.wait_applied(len(lines), [jd2])
        assert st.stop_journeyd(jd2) == 0

        alerts = check_outcome(st, fold, exactly_once=False)
        print("with Redis frozen: %d events in flight (bound %d) while %d "
              "waited in Kafka; SIGTERM gave up after %.1f s (deadline "
              "%.1f s), exit 1; restart applied all %d events: lost = 0, "
              "doubled = 0" % (inflight, MAX_INFLIGHT, len(lines) - 4000,
                               took, DRAIN_MS / 1000.0, len(lines)))


if __name__ == "__main__":
    sys.exit(main())
