"""test_event_clock.py: on the event clock, a partition's clock is stored
beside its watermark, and whoever takes the partition over starts from it.

On one partition, by stream time: a customer speaks once at T, then
another at T + 90 min moves the clock past the first one's new deadlines.
1. With a one-day cadence nothing is due: the first customer gets no
   alert, and journey:clocks holds T + 90 min for the partition, as the
   watermark's write left it; an event 80 min late does not move it back.
2. journeyd stopped, started again with a ten-minute cadence and churn
   after an hour: with no event after the restart, the sweep settles the
   first customer by the stored clock, churned at T + 1 h (before, a
   restarted journeyd knew no clock until the partition's next event, and
   at the end of a replay or of a quiet partition none comes).
3. The stored clock not a time: the next start says so, and the partition's
   next event starts its clock as before.
4. Another silent customer, and an event that moves the stored clock past
   its short deadlines; journeyd started on the wall clock with deadlines
   ten years long (nothing of 2023 due), then reloaded to the event clock
   with the short ones: the reload starts the clock from Redis, and the
   customer is churned at its deadline.
"""
import json
import signal

import harness

HOUR = 3600 * 1000
LONG = """\
clock.lateness = 1m
churn.cadence = 1d
churn.after = 2d
"""
SHORT = """\
clock.lateness = 1m
churn.cadence = 10m
churn.after = 1h
"""
DECADE = """\
churn.cadence = 3650d
churn.after = 7300d
"""
FIELD = "touchpoints/0"


def alerts(st, cid):
    return [a for a in (json.loads(m["value"]) for m in
                        st.consume("journey.churn-risk"))
            if a["customer_id"] == cid]


def main():
    topics = dict(harness.Stack.TOPICS, touchpoints=1)
    with harness.Stack(harness.build_dir(), "event-clock", topics) as st:
        t = 1700000000000
        st.produce_events([
            {"customer_id": "quiet", "type": "ad_click", "ts": t},
            {"customer_id": "mover", "type": "ad_click", "ts": t + 90 * 60000},
        ])
        jd = st.start_journeyd(st.write_config(LONG))
        st.wait_applied(2, [jd])
        assert st.redis("HGET", "journey:clocks", FIELD) == \
            str(t + 90 * 60000), st.redis.hgetall("journey:clocks")
        st.produce_events([{"customer_id": "late", "type": "ad_click",
                            "ts": t + 10 * 60000}])
        st.wait_applied(3, [jd])
        assert st.redis("HGET", "journey:clocks", FIELD) == \
            str(t + 90 * 60000), st.redis.hgetall("journey:clocks")
        assert st.stop_journeyd(jd) == 0
        assert alerts(st, "quiet") == [], alerts(st, "quiet")

        # 2. shorter deadlines, no event: the stored clock brings them due
        jd = st.start_journeyd(st.write_config(SHORT))
        churned = harness.wait_for(
            "the quiet customer churned by the stored clock",
            lambda: [a for a in alerts(st, "quiet")
                     if a["type"] == "churned"], 30)
        assert [harness.parse_iso_ms(a["at"]) for a in churned] == \
            [t + HOUR], churned
        state = st.redis.customer("quiet")
        assert "churned" in state and \
            harness.parse_iso_ms(state["churned"]) == t + HOUR, state
        assert st.stop_journeyd(jd) == 0

        # 3. a clock that is not a time is not taken
        st.redis("HSET", "journey:clocks", FIELD, "soon")
        jd = st.start_journeyd(st.write_config(SHORT))
        harness.wait_for("the bad clock reported", lambda: (
            "event clock of %s: not a time" % FIELD) in st.journeyd_log(jd),
            30)
        st.produce_events([{"customer_id": "next", "type": "ad_click",
                            "ts": t + 2 * HOUR}])
        st.wait_applied(4, [jd])
        assert st.redis("HGET", "journey:clocks", FIELD) == \
            str(t + 2 * HOUR), st.redis.hgetall("journey:clocks")
        assert st.stop_journeyd(jd) == 0

        # 4. a reload from the wall clock to the event clock
        jd = st.start_journeyd(st.write_config(LONG))
        st.produce_events([
            {"customer_id": "quiet2", "type": "ad_click", "ts": t + 3 * HOUR},
            {"customer_id": "mover2", "type": "ad_click", "ts": t + 5 * HOUR},
        ])
        st.wait_applied(6, [jd])
        assert st.stop_journeyd(jd) == 0
        jd = st.start_journeyd(st.write_config(DECADE, clock="wall"))
        harness.wait_for("the partition assigned", lambda: "resumes at 6"
                         in st.journeyd_log(jd), 30)
        st.write_config(SHORT)
        jd.send_signal(signal.SIGHUP)
        churned = harness.wait_for(
            "the second quiet customer churned by the clock the reload read",
            lambda: [a for a in alerts(st, "quiet2")
                     if a["type"] == "churned"], 30)
        assert [harness.parse_iso_ms(a["at"]) for a in churned] == \
            [t + 4 * HOUR], churned
        assert st.stop_journeyd(jd) == 0
    print("the event clock stored with the watermark; a restart, and a "
          "reload from the wall clock, churned a silent customer by it, "
          "with no event to come")


if __name__ == "__main__":
    main()
