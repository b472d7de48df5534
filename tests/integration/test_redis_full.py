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
   writes before journeyd counts it as up (none may log "connected").
   Taken as up as soon as it answered, journeyd resumed consuming at
   every reconnection, and produced the alerts of up to max_inflight
   events again each time, before a state write found Redis still full.
3. Redis is given room: every event is applied exactly once, and every
   stage change is alerted (repeats with their alert_id).
4. A heartbeat key of another type (another tool's) is the key's trouble,
   not Redis's: its refusal is logged and the stream goes on.
"""
import re
import sys
import time

import harness
from fold import Fold, check_outcome

CUSTOMERS, EVENTS = 800, 16000
CHUNK, PERIOD = 200, 0.25  # about 800 events/s
FULL_S = 12  # several reconnections: the backoff reaches 5 s in about 6 s


def up_again(st, jd):
    """Times Redis counted as up so far, and partitions resumed from their
    Redis watermark (each time it does, journeyd reads them and consumes
    again)."""
    log = st.journeyd_log(jd)
    return log.count("redis: connected"), log.count("resumes at")


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
        before = up_again(st, jd)
        end = time.monotonic() + FULL_S
        while time.monotonic() < end:
            assert jd.poll() is None, st.journeyd_log(jd)[-2000:]
            now = up_again(st, jd)
            assert now == before, (
                "Redis up again %d times, partitions resumed %d times, "
                "while it refused writes:\n%s" % (
                    now[0] - before[0], now[1] - before[1],
                    st.journeyd_log(jd)[-3000:]))
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

        # 4. a heartbeat key of another type (another tool's): the key's
        # trouble, not Redis's: logged, and the stream goes on
        jd = st.start_journeyd(st.write_config(http=True))
        st.redis("SET", "journey:instances", "not a sorted set")
        harness.wait_for("the heartbeat's refusal logged", lambda:
                         "ZADD refused: WRONGTYPE" in st.journeyd_log(jd), 60)
        st.produce_events([{"customer_id": "late-%d" % i, "type": "ad_click"}
                           for i in range(50)])
        st.wait_applied(len(lines) + 50, [jd])
        assert health(st)[0] == 200, health(st)
        assert "write refused" not in st.journeyd_log(jd), \
            st.journeyd_log(jd)[-3000:]
        assert st.stop_journeyd(jd) == 0
        print("Redis full twice: idle (seen by the heartbeat), then under a "
              "stream at %d of %d events applied; %d reconnections checked "
              "writes in %d s, consuming nothing; then every event applied "
              "once, %d alerts for %d transitions" % (
                  applied_full, len(lines), checks, FULL_S, len(alerts),
                  len(set(fold.transitions))))


if __name__ == "__main__":
    sys.exit(main())
