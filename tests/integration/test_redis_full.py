"""test_redis_full.py: a Redis that answers but refuses writes (full, at
its maxmemory under noeviction) pauses journeyd like a lost one, and
journeyd consumes nothing until Redis takes writes again.

1. Idle, no events flowing: Redis is made full. The next heartbeat (a
   write journeyd sends without waiting for its answer) is refused, and
   /healthz must say so: 503, "redis down" with Redis's OOM error. Then
   Redis is given room, and /healthz is 200 again.
2. Under a steady stream, Redis is made full again. The first state write
   refused loses Redis; from then on nothing may be consumed while Redis
   stays full: each reconnection checks with a write that Redis takes
   writes before journeyd counts it as up. Taken as up as soon as it
   answered, journeyd resumed consuming at every reconnection, and
   produced the alerts of up to max_inflight events again each time,
   before a state write found Redis still full.
3. Redis is given room: every event is applied exactly once, and every
   stage change is alerted (repeats with their alert_id).
"""
import re
import sys
import time

import harness
from fold import Fold, check_outcome

CUSTOMERS, EVENTS = 800, 16000
CHUNK, PERIOD = 200, 0.25  # about 800 events/s
FULL_S = 12  # several reconnections: the backoff reaches 5 s in about 6 s


def resumed(st, jd):
    """Partitions resumed from their Redis watermark so far: each time
    Redis counts as up again, journeyd reads them and consumes."""
    return st.journeyd_log(jd).count("resumes at")


def health(st):
    return st.http_get("/healthz")


def main():
    with harness.Stack(harness.build_dir(), "redisfull") as st:
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 17)
        fold = Fold(lines)
        jd = st.start_journeyd(st.write_config(http=True))
        st.produce("touchpoints", lines[:2000])
        st.wait_applied(2000, [jd])
        harness.wait_for("/healthz ok", lambda: health(st)[0] == 200, 60)

        # 1. full while idle: the heartbeat's refusal is seen
        st.redis("CONFIG", "SET", "maxmemory", "1")
        harness.wait_for(
            "/healthz to say Redis refuses writes",
            lambda: health(st)[0] == 503 and "OOM" in health(st)[1], 60,
            show=lambda: health(st))
        status, body = health(st)
        assert re.search(r"redis down \(.*OOM", body), body
        st.redis("CONFIG", "SET", "maxmemory", "0")
        harness.wait_for("/healthz ok again", lambda: health(st)[0] == 200,
                         60, show=lambda: health(st))

        # 2. full under a steady stream
        feeder = st.feed(lines[2000:], CHUNK, PERIOD)
        st.wait_applied(5000, [jd])
        st.redis("CONFIG", "SET", "maxmemory", "1")
        harness.wait_for("a state write refused",
                         lambda: health(st)[0] == 503, 60)
        before = resumed(st, jd)
        end = time.monotonic() + FULL_S
        while time.monotonic() < end:
            assert jd.poll() is None, st.journeyd_log(jd)[-2000:]
            now = resumed(st, jd)
            assert now == before, (
                "partitions resumed %d times while Redis refused writes:"
                "\n%s" % (now - before, st.journeyd_log(jd)[-3000:]))
            time.sleep(0.2)
        log = st.journeyd_log(jd)
        checks = log.count("SET writer chain: OOM")
        assert checks >= 2, "reconnections did not check writes:\n%s" % \
            log[-3000:]
        applied_full = st.applied_offsets()
        st.redis("CONFIG", "SET", "maxmemory", "0")

        # 3. room again: everything applied once, every change alerted
        feeder.join()
        st.wait_applied(len(lines), [jd], timeout=300)
        assert health(st)[0] == 200, health(st)
        rc = st.stop_journeyd(jd)
        assert rc == 0, "journeyd exited %d:\n%s" % (
            rc, st.journeyd_log(jd)[-3000:])
        alerts = check_outcome(st, fold, exactly_once=False)
        print("Redis full twice: idle (seen by the heartbeat), then under a "
              "stream at %d of %d events applied; %d reconnections checked "
              "writes in %d s, consuming nothing; then every event applied "
              "once, %d alerts for %d transitions" % (
                  applied_full, len(lines), checks, FULL_S, len(alerts),
                  len(set(fold.transitions))))


if __name__ == "__main__":
    sys.exit(main())
