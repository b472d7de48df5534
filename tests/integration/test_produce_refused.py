"""test_produce_refused.py: an alert topic that refuses journeyd's writes
for a while (Topic authorization failed, 8 produce requests in a row)
holds the alert back, and nothing else: journeyd stays up, /healthz says
which messages wait and why, the alert is produced again until the broker
takes it, and its event is then applied.

The refusal reaches journeyd twice: as a failed delivery report, and then
as an error of producing it again at once (librdkafka remembers the
topic's error until its metadata is read again). journeyd used to exit on
the second, and, restarted, fail the same way for as long as the topic
refused.
"""
import json
import sys
import time

import harness

PRODUCE = 0                     # Produce's ApiKey
TOPIC_AUTHORIZATION_FAILED = 29
REFUSALS = 8


def main():
    with harness.Stack(harness.build_dir(), "journeyd-refused") as st:
        config = st.write_config(http=True)
        jd = st.start_journeyd(config)
        st.produce_events([{"customer_id": "a", "type": "ad_click",
                            "ts": 1767225600000}])
        st.wait_applied(1, [jd])
        # the next produce requests must be journeyd's: it is stopped
        # while the event is produced, and started with the errors waiting
        assert st.stop_journeyd(jd) == 0
        st.produce_events([{"customer_id": "b", "type": "ad_click",
                            "ts": 1767225660000}])
        assert st.broker_command("error %d %d %d" % (
            PRODUCE, REFUSALS, TOPIC_AUTHORIZATION_FAILED)) == "ok"
        jd = st.start_journeyd(config)
        health = []

        def applied():
            if jd.poll() is not None:
                raise AssertionError("journeyd exited with %d:\n%s" % (
                    jd.returncode, st.journeyd_log(jd)[-3000:]))
            status, body = st.http_get("/healthz")
            if status == 503 and "produced again" in body:
                health.append(body)
            return st.applied_offsets() >= 2
        harness.wait_for("b's alert to be taken and b applied", applied, 120)
        assert health, "/healthz never said that messages wait"
        assert "journey.stage-change: Broker: Topic authorization failed" \
            in health[0], health[0]
        again = st.metrics()["journeyd_produced_again_total"][frozenset()]
        assert again >= 1, again
        alerts = [json.loads(m["value"]) for m in
                  st.consume("journey.stage-change")]
        assert [a["customer_id"] for a in alerts if a["customer_id"] == "b"]
        assert st.http_get("/healthz")[0] == 200
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-3000:]
        print("topic refused %d produce requests: /healthz said %r; "
              "produced again %d times, then taken; journeyd stayed up" %
              (REFUSALS, health[0], again))
    return 0


if __name__ == "__main__":
    sys.exit(main())
