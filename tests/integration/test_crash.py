"""test_crash.py: kill -9 journeyd at random moments, many times, under a
steady stream; nothing is lost and nothing is applied twice.

A feeder produces touchpoints at a steady rate while journeyd is killed
with SIGKILL at random points of its work and restarted, at least 20
times (every other time once it has begun applying events, so that some
kills land mid-write however slowly it starts). After a last instance drains the stream, Redis must equal the fold
of every event exactly (no double counts), every expected stage change
must be on the alert topic at least once, and repeats of one stage change
must share one alert_id.
"""
import random
import sys
import time

import harness
from fold import Fold, check_outcome

KILLS = int(__import__("os").environ.get("CRASH_KILLS", 22))
CUSTOMERS, EVENTS = 2500, 48000
CHUNK, PERIOD = 200, 0.5  # about 400 events/s: spans all the kills


def main():
    topics = dict(harness.Stack.TOPICS, touchpoints=8)
    with harness.Stack(harness.build_dir(), "crash", topics) as st:
        # some events sent twice, late, tied or without a channel
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 23, "-d", 5)
        fold = Fold(lines)
        config = st.write_config("batch_max = 200\n", session_ms=3000)
        rng = random.Random(1)

        feeder = st.feed(lines, CHUNK, PERIOD)

        def start():
            jd = st.start_journeyd(config)
            harness.wait_for("partitions to be assigned",
                             lambda: "assigned" in st.journeyd_log(jd), 60)
            return jd

        kills = busy = 0
        for k in range(KILLS):
            jd = start()
            before = st.applied_offsets()
            if k % 2:
                # every other kill once it is applying (a slow start, as
                # under ASan with other tests beside it, could otherwise
                # outlast every random moment), a little after
                end = time.monotonic() + 30
                while (st.applied_offsets() == before and
                       time.monotonic() < end):
                    time.sleep(0.01)
                time.sleep(rng.uniform(0, 0.3))
            else:
                time.sleep(rng.uniform(0.05, 1.2))
            assert jd.poll() is None, "journeyd died by itself:\n" + \
                st.journeyd_log(jd)[-2000:]
            jd.kill()
            jd.wait()
            kills += 1
            busy += st.applied_offsets() > before
        at_last_kill = st.applied_offsets()
        feeder.join()
        # kills of an idle journeyd would prove nothing about a crash mid-write
        assert busy > 0, "no kill landed while journeyd was applying events"

        jd = start()
        st.wait_applied(len(lines), [jd], timeout=300)
        rc = st.stop_journeyd(jd)
        assert rc == 0, "journeyd exited %d:\n%s" % (
            rc, st.journeyd_log(jd)[-3000:])

        alerts = check_outcome(st, fold, exactly_once=False)
        want = set(fold.transitions)
        print("kills survived %d (%d while applying; %d of %d events applied "
              "at the last kill); events checked %d, customers %d; alerts %d "
              "for %d transitions (%d repeats, same ids): lost = 0, "
              "doubled = 0" % (
                  kills, busy, at_last_kill, len(lines), len(lines),
                  len(fold.customers), len(alerts), len(want),
                  len(alerts) - len(want)))


if __name__ == "__main__":
    sys.exit(main())
