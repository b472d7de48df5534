"""test_produce_refused.py: an alert topic that refuses journeyd's writes
for a while (Topic authorization failed, 20 produce requests in a row)
holds back its alerts, and nothing else: journeyd stays up, /healthz says
which messages wait and why, alerts of events that come meanwhile wait
behind them, the dead-letter topic goes on, and once the broker takes the
alerts again every one is delivered and every event applied.

The refusal reaches journeyd as failed delivery reports, and then as
errors of producing at once (librdkafka remembers the topic's error until
its metadata is read again), for the alerts produced again and for new
ones. journeyd used to exit on those, and, restarted, fail the same way
for as long as the topic refused.

Every partition of the alert topic is led by broker 2, and the others by
broker 1 or 3, so that only journeyd's alerts meet the errors injected at
broker 2 (ktool produces the events to broker 1).
"""
import json
import sys

import harness

PRODUCE = 0                     # Produce's ApiKey
TOPIC_AUTHORIZATION_FAILED = 29
REFUSALS = 20


def main():
    with harness.Stack(harness.build_dir(), "journeyd-refused") as st:
        for topic, n in st.topics.items():
            broker = 2 if topic == "journey.stage-change" else \
                1 if topic == "touchpoints" else 3
            for p in range(n):
                assert st.broker_command("leader %s %d %d" % (
                    topic, p, broker)) == "ok"
        jd = st.start_journeyd(st.write_config(http=True))
        ts = [1767225600000]

        def send(cid, etype="ad_click"):
            ts[0] += 60000
            st.produce_events([{"customer_id": cid, "type": etype,
                                "ts": ts[0]}])

        def alive():
            if jd.poll() is not None:
                raise AssertionError("journeyd exited with %d:\n%s" % (
                    jd.returncode, st.journeyd_log(jd)[-3000:]))

        send("a")
        st.wait_applied(1, [jd])
        for _ in range(REFUSALS):
            assert st.broker_command("brokererror 2 %d %d" % (
                PRODUCE, TOPIC_AUTHORIZATION_FAILED)) == "ok"
        send("b")
        health = []

        def waiting():
            alive()
            status, body = st.http_get("/healthz")
            if status == 503 and "produced again" in body:
                health.append(body)
            return health
        harness.wait_for("/healthz to say that alerts wait", waiting, 60)
        assert "journey.stage-change: Broker: Topic authorization failed" \
            in health[0], health[0]
        # new alerts while the topic refuses, and a dead letter
        for cid in ("c0", "c1", "c2"):
            send(cid)
        st.produce("touchpoints", ['bad\t{"customer_id":"bad"}'])

        def applied():
            alive()
            return st.applied_offsets() >= 6
        # each round of resends, refused, doubles the delay before the
        # next, up to 10 s: a slow machine may take several more rounds
        harness.wait_for("every event applied", applied, 300)
        again = st.metrics()["journeyd_produced_again_total"][frozenset()]
        assert again >= 1, again
        alerted = [json.loads(m["value"])["customer_id"] for m in
                   st.consume("journey.stage-change")]
        assert set(alerted) == {"a", "b", "c0", "c1", "c2"}, alerted
        assert [m["key"] for m in st.consume("journey.dead-letter")] == \
            ["bad"]
        assert st.http_get("/healthz")[0] == 200
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-3000:]
        print("alert topic refused %d produce requests: /healthz said %r; "
              "produced again %d times, then taken; 3 new alerts waited "
              "meanwhile; journeyd stayed up" % (REFUSALS, health[0], again))
    return 0


if __name__ == "__main__":
    sys.exit(main())
