"""test_sigterm.py: SIGTERM mid-stream, then a restart, loses and doubles
nothing.

journeyd is stopped while events are still arriving; it must drain what it
holds, commit, and exit 0. A new process then takes over from the committed
offsets: at the end Redis equals the fold of every event, each transition
was alerted exactly once, and the second process saw no replayed event
(it consumed exactly what the first had not applied). A third, whose
partition watermark in Redis was set back by 500, reads those again and
counts each a duplicate, changing nothing.
"""
import re
import subprocess
import sys

import harness
from fold import Fold, check_outcome


def stopped_stats(log):
    m = re.search(r"stopped: consumed (\d+), applied (\d+), duplicates (\d+)",
                  log)
    assert m, "no final stats line in the log:\n" + log[-2000:]
    return tuple(int(x) for x in m.groups())


def main():
    with harness.Stack(harness.build_dir(), "sigterm") as st:
        lines = st.loadgen("-c", 1500, "-n", 36000, "-s", 11)
        fold = Fold(lines)
        first, second, third = lines[:12000], lines[12000:24000], lines[24000:]
        config = st.write_config("batch_max = 100\nmax_inflight = 400\n")

        st.produce("touchpoints", first)
        jd = st.start_journeyd(config)
        feeder = subprocess.Popen(
            [st.bin["ktool"], "produce", st.brokers, "touchpoints"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, text=True)
        feeder.stdin.write("".join(l + "\n" for l in second))
        feeder.stdin.close()
        st.wait_applied(6000, [jd])
        rc = st.stop_journeyd(jd)
        assert rc == 0, "journeyd exited %d:\n%s" % (rc, st.journeyd_log(jd))
        at_stop = st.applied_offsets()
        # the stop commits to Kafka what it stored: each partition's next
        # offset after its watermark (the auto-commit alone lags a second)
        assert st.committed() == st.committed_as_applied(), \
            (st.committed(), st.committed_as_applied())
        assert feeder.wait(120) == 0
        print("stopped after %d of %d events" % (at_stop, len(lines)))
        assert at_stop < len(first) + len(second), \
            "the stop did not land mid-stream"

        jd2 = st.start_journeyd(config)
        st.produce("touchpoints", third)
        st.wait_applied(len(lines), [jd2])
        assert st.stop_journeyd(jd2) == 0
        assert st.committed() == st.committed_as_applied()

        alerts = check_outcome(st, fold, exactly_once=True)
        consumed, applied, dups = stopped_stats(st.journeyd_log(jd2))
        assert dups == 0, "the restarted journeyd re-read %d events" % dups
        assert consumed == applied == len(lines) - at_stop, \
            (consumed, applied, len(lines) - at_stop)

        # Redis's watermark of a partition set back 500 (as when Redis
        # loses its last second): a third run reads those 500 again, and
        # finds each already applied by the offset its customer's state
        # holds: 500 duplicates, nothing changed
        before = st.redis.hgetall("journey:offsets")
        st.redis("HSET", "journey:offsets", "touchpoints/0",
                 int(before["touchpoints/0"]) - 500)
        jd3 = st.start_journeyd(config)
        st.wait_applied(len(lines), [jd3])
        assert st.stop_journeyd(jd3) == 0
        assert st.redis.hgetall("journey:offsets") == before
        assert stopped_stats(st.journeyd_log(jd3)) == (500, 0, 500), \
            stopped_stats(st.journeyd_log(jd3))
        check_outcome(st, fold, exactly_once=True)
        print("events %d, customers %d, alerts %d; second run consumed %d, "
              "duplicates %d: lost = 0, doubled = 0; 500 read again: 500 "
              "duplicates" % (len(lines), len(fold.customers), len(alerts),
                              consumed, dups))


if __name__ == "__main__":
    sys.exit(main())
