"""test_kafka_log.py: an input partition whose log no longer holds the
position journeyd resumes at (its Redis watermark + 1).

1. Retention: journeyd applies offsets 0-99 and stops; then so much is
   produced that the mock cluster drops the partition's oldest message
   sets (it keeps about 5 MB), events journeyd never read among them.
   Started again, journeyd must read from the start of what Kafka holds,
   apply all of it, and say which offsets retention took: a log line and
   journeyd_kafka_offsets_gone_total. librdkafka's own reset did the
   reading, and nothing but its one line of its own said so.
2. The topic deleted and created again (a fresh mock cluster, Redis kept):
   its log starts again at offset 0, below the watermark. Its events would
   pass for ones already applied to customers whose offsets say so, and
   be dropped unseen, while new customers' were applied: half a topic. The
   partition must be held instead: nothing of it applied, nothing
   committed, the watermark unchanged, /healthz 503 and the
   journeyd_kafka_partitions_held gauge at 1. Its timers do not run
   either: with churn settings that the stored event clock has passed
   for the customers already there, none is churned (they were, by the
   clock stored in Redis, before the timers asked whether the partition
   is held).
3. Redis restarted: the partition, assigned again from its watermark, is
   checked again, and held again.
(kafka.consumer.auto.offset.reset is journeyd's own, `latest` skipping
everything a lagging partition holds: test_config checks the refusal.)
"""
import base64
import json
import os
import sys
import time

import harness

TOPICS = {"touchpoints": 1, "journey.stage-change": 1,
          "journey.churn-risk": 1, "journey.dead-letter": 1}
BASE_TS = 1767225600000     # 2026-01-01T00:00:00Z
# past, for the old customers, by the clock their events left (+10 min)
SHORT_CHURN = "churn.cadence = 1m\nchurn.after = 2m\n"


def event(cid, n, etype="ad_click", pad=None):
    ev = {"customer_id": cid, "type": etype, "ts": BASE_TS + n * 60000,
          "event_id": "%s-%d" % (cid, n)}
    if pad:
        ev["properties"] = {"pad": pad}
    return ev


def gauge(st, name):
    return int(st.metrics()[name][frozenset()])


def fresh_cluster(st):
    """Every topic deleted and created again, empty; Redis kept."""
    st.broker_proc.stdin.close()
    st.broker_proc.wait(10)
    st.start_broker()


def main():
    with harness.Stack(harness.build_dir(), "kafkalog", TOPICS) as st:
        # 1. retention took offsets journeyd had not read
        old = ["old-%02d" % i for i in range(20)]
        jd = st.start_journeyd(st.write_config(http=True))
        st.produce_events([event(c, n) for n in range(5) for c in old])
        st.wait_applied(100, [jd])
        assert ("kafka: touchpoints/0 reads from the start of its log (no "
                "Redis watermark)") in st.journeyd_log(jd)
        assert st.stop_journeyd(jd) == 0
        big = [event("big-%04d" % i, 10, pad=base64.b64encode(
            os.urandom(4500)).decode()) for i in range(1500)]
        st.produce_events(big)
        low = min(m["offset"] for m in st.consume("touchpoints"))
        assert 100 < low < 1600, "the mock kept offsets from %d" % low

        jd = st.start_journeyd(st.write_config(http=True))
        st.wait_applied(1600, [jd])
        log = st.journeyd_log(jd)
        assert ("touchpoints/0: offsets 100 to %d were deleted by Kafka's "
                "retention" % (low - 1)) in log, log[-3000:]
        assert gauge(st, "journeyd_kafka_offsets_gone_total") == low - 100
        for i, ev in enumerate(big):
            kept = st.redis.customer(ev["customer_id"]) != {}
            assert kept == (100 + i >= low), (ev["customer_id"], low)
        assert st.http_get("/healthz")[0] == 200, st.http_get("/healthz")
        assert st.stop_journeyd(jd) == 0
        watermarks = st.redis.hgetall("journey:offsets")
        states = {c: st.redis.customer(c) for c in old}

        # 2. the topic created again: its log starts below the watermark
        fresh_cluster(st)
        new = ["new-%02d" % i for i in range(5)]
        st.produce_events([event(c, 20, "purchase") for c in old[:5]] +
                          [event(c, 20, "purchase") for c in new])
        jd = st.start_journeyd(st.write_config(SHORT_CHURN, http=True))
        harness.wait_for("the partition held",
                         lambda: st.http_get("/healthz")[0] == 503, 60,
                         show=lambda: st.http_get("/healthz"))
        status, body = st.http_get("/healthz")
        assert ("kafka: 1 partitions held, their log started again "
                "(touchpoints/0 at offset 0, below 1600)") in body, body
        assert gauge(st, "journeyd_kafka_partitions_held") == 1
        assert ("touchpoints/0: its log starts again at offset 0, below "
                "offset 1600, where journeyd had got to") in \
            st.journeyd_log(jd), st.journeyd_log(jd)[-3000:]
        time.sleep(3)   # 15 scans of the timers, which must find nothing
        for c in new:
            assert st.redis.customer(c) == {}, c
        for c in old:
            assert st.redis.customer(c) == states[c], c
        assert st.redis.hgetall("journey:offsets") == watermarks
        assert st.consume("journey.stage-change") == []
        assert st.consume("journey.churn-risk") == []

        # 3. assigned again (Redis back after a restart): checked again
        st.kill_redis()
        st.start_redis()
        harness.wait_for("the rewind after Redis came back", lambda:
                         st.journeyd_log(jd).count("resumes at 1600") >= 2,
                         60)
        harness.wait_for("the partition held again", lambda: st.journeyd_log(
            jd).count("its log starts again at offset 0") >= 2, 60)
        assert st.http_get("/healthz")[0] == 503
        assert st.redis.hgetall("journey:offsets") == watermarks
        assert st.stop_journeyd(jd) == 0
        assert st.committed() == {0: -1001}, st.committed()
        for c in new:
            assert st.redis.customer(c) == {}, c
        print("retention took offsets 100-%d: counted and logged, the "
              "rest applied; a topic created again held at offset 0 below "
              "watermark 1599, twice" % (low - 1))


if __name__ == "__main__":
    sys.exit(main())
