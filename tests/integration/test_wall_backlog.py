"""test_wall_backlog.py: with clock = wall, a customer whose events wait in
Kafka is not flagged before they are read.

journeyd is stopped while a customer stays active (an event every 0.3 s or
so for 6 s, a cadence of 1 s); the brokers answer 300 ms late, so the backlog
takes a while to read when journeyd starts again. The timers ran on the
machine's clock whatever had been read, and found the customer silent
past its deadlines before its own events came: churn risk, churned, then
reactivated by the next event read, over and over (17 alerts in a
review's run). Now a partition's clock, while its backlog is read, is the
Kafka time of the last message taken from it: no alert may be dated
before the customer's last event. Once the backlog is read the clock is
the machine's again, and the real silence after the last event is
flagged.
"""
import json
import sys
import time

import harness


def event(cid, etype, ts):
    return "%s\t%s" % (cid, json.dumps({"customer_id": cid, "type": etype,
                                        "ts": ts}))


def main():
    topics = dict(harness.Stack.TOPICS, touchpoints=1)
    with harness.Stack(harness.build_dir(), "wallbacklog", topics) as st:
        config = st.write_config("churn.cadence = 1s\nchurn.after = 4s\n",
                                 clock="wall")
        # the partition's watermark: it resumes past it, not from the start
        jd = st.start_journeyd(config)
        st.produce("touchpoints", [event("before", "ad_click",
                                         int(time.time() * 1000))])
        st.wait_applied(1, [jd])
        assert st.stop_journeyd(jd) == 0
        sent = 1
        end = time.time() + 6
        while time.time() < end:
            st.produce("touchpoints", [event("active", "page_view",
                                             int(time.time() * 1000))])
            sent += 1
            time.sleep(0.2)
        last_ts = int(time.time() * 1000)
        assert st.broker_command("rtt -1 300").startswith("ok"), \
            "mockbroker refused rtt"

        jd = st.start_journeyd(config)
        st.wait_applied(sent, [jd])

        def alerts():
            return [json.loads(m["value"])
                    for m in st.consume("journey.churn-risk")
                    if m["key"] == "active"]
        # the real silence after the last event: flagged on the wall clock
        harness.wait_for("the silence after the last event flagged", lambda:
                         any(a["type"] == "churn_risk" for a in alerts()),
                         60, show=alerts)
        early = [a for a in alerts()
                 if harness.parse_iso_ms(a["at"]) < last_ts]
        assert not early, "flagged while its events waited in Kafka: %s" % (
            json.dumps(early, indent=1)[:3000])
        assert st.stop_journeyd(jd) == 0
        print("%d events of one active customer read from a backlog: no "
              "alert before the last; its silence after it flagged" % sent)


if __name__ == "__main__":
    sys.exit(main())
