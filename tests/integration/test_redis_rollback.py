"""test_redis_rollback.py: Redis comes back without its latest writes (a
lost last second of AOF, a failover to a replica behind, a restore from a
snapshot), and journeyd applies again exactly what it lost.

Under a steady stream, Redis's data is saved to an RDB snapshot (SAVE)
and journeyd goes on writing well past it; then redis-server is killed
(SIGKILL), its append-only files are deleted, and it is started again on
the same port from the snapshot alone: customers, watermarks, deadline
entries and the name table as they were when it was taken, though Kafka
holds commits made after it. journeyd must resume each partition from the
watermark Redis holds now, not from Kafka's commit, so that in the end
Redis equals the fold of every event, and every stage change is alerted
at least once, repeats sharing their alert_id.
"""
import os
import re
import shutil
import sys

import harness
from fold import Fold, check_outcome

CUSTOMERS, EVENTS = 1500, 24000
CHUNK, PERIOD = 250, 0.25  # about 1000 events/s


def main():
    with harness.Stack(harness.build_dir(), "rollback") as st:
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 37)
        fold = Fold(lines)
        jd = st.start_journeyd(st.write_config("redis.timeout_ms = 500\n"))
        feeder = st.feed(lines, CHUNK, PERIOD)

        st.wait_applied(4000, [jd])
        assert st.redis("SAVE") == "OK"
        saved = st.applied_offsets()    # or a little more than the RDB's
        st.wait_applied(saved + 6000, [jd])
        committed = sum(max(o, 0) for o in st.committed().values())
        assert committed > saved, (committed, saved)

        # a reconnection before the kill (a SAVE slower than
        # redis.timeout_ms) is not the one looked at below
        before = len(st.journeyd_log(jd))
        st.kill_redis()
        shutil.rmtree(os.path.join(st.tmp, "appendonlydir"))
        st.start_redis(appendonly=False)

        # the snapshot's watermarks, which journeyd resumes from: behind
        # Kafka's commits, not none (read from its log: it writes on top
        # of them as soon as it is back, before the test could read them)
        def resumed():
            log = st.journeyd_log(jd)[before:].split(
                "redis: connected again", 1)
            return re.findall(r"kafka: \S+ resumes at (\d+) \(Redis "
                              r"watermark\)", log[1]) if len(log) == 2 else []
        back = sum(int(n) for n in harness.wait_for(
            "the rewind to the snapshot's watermarks", lambda: len(
                resumed()) == st.topics["touchpoints"] and resumed(), 60))
        assert 0 < back <= saved, (back, saved)
        assert st.redis("CONFIG", "SET", "appendonly", "yes") == "OK"

        feeder.join()
        st.wait_applied(len(lines), [jd], timeout=300)
        rc = st.stop_journeyd(jd)
        log = st.journeyd_log(jd)
        assert rc == 0, "journeyd exited %d:\n%s" % (rc, log[-3000:])
        assert "redis: connected again" in log, log[-3000:]
        alerts = check_outcome(st, fold, exactly_once=False)
        print("Redis restored from a snapshot %d events behind Kafka's "
              "commits: journeyd resumed from Redis's watermarks; events "
              "checked %d, alerts %d for %d transitions: lost = 0, "
              "doubled = 0" % (committed - back, len(lines), len(alerts),
                               len(set(fold.transitions))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
