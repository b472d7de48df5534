"""test_abandoned_alerts.py: alerts of work abandoned when Redis is lost
are not produced again by journeyd while their topic cannot take them:
the events are read again, and their replay produces the same alerts.

The broker that leads every partition of the alert topic is down, so
journeyd's alerts fail after kafka.producer.message.timeout.ms. Meanwhile
journeyd loses Redis three times (CLIENT KILL): each time it abandons
the batches waiting for those alerts and, connected again, reads the
events again and produces their alerts again. Only the copies of the
batches still in flight may wait to be produced again; those of abandoned
batches used to wait as well, in a backlog that grew by every event in
flight at each loss of Redis for as long as the topic refused, and each
came out once the topic took writes again.

Once the broker is back, every event is applied and every alert is on its
topic, but none of them four times; and /metrics counts each event applied
and each alert once, not once per loss.
"""
import collections
import json
import re
import sys

import harness

CUSTOMERS = 10
LOSSES = 3
# max_inflight: the abandoned batches' messages count against it until
# their reports come; were they never let go, consumption would stop
CONFIG = "kafka.producer.message.timeout.ms = 3000\nmax_inflight = 25\n"


def main():
    with harness.Stack(harness.build_dir(), "abandoned") as st:
        for topic, n in st.topics.items():
            broker = 2 if topic == "journey.stage-change" else 1
            for p in range(n):
                assert st.broker_command("leader %s %d %d" % (
                    topic, p, broker)) == "ok"
        assert st.broker_command("coordinator group journeyd 1") == "ok"
        jd = st.start_journeyd(st.write_config(CONFIG, http=True))
        harness.wait_for("partitions assigned",
                         lambda: "assigned" in st.journeyd_log(jd), 60)
        assert st.broker_command("down 2") == "ok"

        def alive():
            if jd.poll() is not None:
                raise AssertionError("journeyd exited with %d:\n%s" % (
                    jd.returncode, st.journeyd_log(jd)[-3000:]))

        def inflight():
            alive()
            return st.metrics()["journeyd_inflight_events"][frozenset()]

        st.produce_events([{"customer_id": "c%d" % i, "type": "ad_click",
                            "ts": 1767225600000 + i}
                           for i in range(CUSTOMERS)])
        harness.wait_for("the events to wait for their alerts",
                         lambda: inflight() == CUSTOMERS, 60, show=inflight)
        for loss in range(1, LOSSES + 1):
            st.redis("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            harness.wait_for(
                "the work in flight abandoned (%d)" % loss,
                lambda: st.journeyd_log(jd).count("abandoned ") >= loss, 60)
            harness.wait_for("the events read again (%d)" % loss,
                             lambda: inflight() == CUSTOMERS, 60,
                             show=inflight)

        # the copies in flight fail last: those of abandoned batches are
        # ahead of them in their partitions' queues
        def waiting():
            alive()
            status, body = st.http_get("/healthz")
            m = re.search(r"(\d+) messages wait to be produced again", body)
            return status == 503 and m and int(m.group(1)) >= CUSTOMERS
        harness.wait_for("the alerts in flight to wait", waiting, 60)
        assert st.broker_command("up 2") == "ok"
        st.wait_applied(CUSTOMERS, [jd])
        harness.wait_for("/healthz to be 200 again",
                         lambda: st.http_get("/healthz")[0] == 200, 60)

        copies = collections.Counter(
            json.loads(m["value"])["alert_id"]
            for m in st.consume("journey.stage-change"))
        assert len(copies) == CUSTOMERS, copies
        assert max(copies.values()) <= 2, copies
        # counted once, though applied and alerted once per loss and once
        # more: what was abandoned is not counted
        harness.wait_for("nothing in flight", lambda: inflight() == 0, 60)
        m = st.metrics()
        counted = (m["journeyd_events_total"][frozenset([("outcome",
                                                           "applied")])],
                   m["journeyd_alerts_total"][frozenset([("type",
                                                          "stage_change")])])
        assert counted == (CUSTOMERS, CUSTOMERS), counted
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-3000:]
        print("alert topic down while Redis was lost %d times: %d alerts, "
              "each on the topic %s times, not once per loss" % (
                  LOSSES, CUSTOMERS, sorted(set(copies.values()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
