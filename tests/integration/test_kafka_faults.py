"""test_kafka_faults.py: Kafka misbehaves mid-stream; nothing is lost and
nothing applied twice.

Under a steady stream, through the mock cluster's fault injection: one
broker down and up, every broker down and up, errors on produce requests
(journeyd's alerts and dead letters) and on offset commits, a fatal
idempotent-producer error (out-of-order sequence on journeyd's alert
broker: the producer must be replaced and resend what was not
acknowledged), the group coordinator moved to another broker, and a
second journeyd joining the
group and leaving it again (two rebalances, each handing partitions over
mid-stream). Afterwards Redis equals the fold of every event, every stage
change was alerted at least once, and repeats share their alert_id. Then
the cluster refuses journeyd's producers an id six times: each new one
fails at its start, and comes after a delay that doubles; the alerts of
a thousand customers walking every stage, held by the failing producers
or waiting for the next, come in order for each.
Then a journeyd stopped while every broker is down gives up leaving its
group at its drain deadline, instead of waiting out the session timeout.
Last, a journeyd fenced (a Heartbeat answered FENCED_INSTANCE_ID: a fatal
error of its consumer) exits 1 instead of consuming nothing for good.
"""
import json
import re
import sys
import time

import harness
from fold import Fold, check_outcome

CUSTOMERS, EVENTS = 1500, 30000
CHUNK, PERIOD = 250, 0.3
WALKERS = 1000

# Kafka protocol: ApiKey 0 Produce, 8 OffsetCommit; error 6
# NOT_LEADER_FOR_PARTITION, 15 COORDINATOR_NOT_AVAILABLE (both retriable),
# 45 OUT_OF_ORDER_SEQUENCE_NUMBER (fatal to an idempotent producer). Input
# topic partitions are led by broker 1, journeyd's output topics by broker
# 2, so a broker-2 error reaches journeyd's producer and not the feeder.
FAULTS = [
    ("fatal producer error", ["brokererror 2 0 45"], []),
    ("one broker down", ["down 2"], ["up 2"]),
    ("all brokers down", ["down -1"], ["up -1"]),
    ("produce errors", ["error 0 5 6"], []),
    ("offset commit errors", ["error 8 5 15"], []),
    ("coordinator moved", ["coordinator group journeyd 3"],
     ["coordinator group journeyd 1"]),
]


def unreachable(st):
    status, body = st.http_get("/healthz")
    assert status is not None, body
    return "kafka unreachable" in body


def main():
    with harness.Stack(harness.build_dir(), "kafkafaults") as st:
        # some events sent twice, late, tied or without a channel
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 41, "-d", 5)
        fold = Fold(lines)
        for topic, n in st.topics.items():
            for p in range(n):
                leader = 1 if topic == "touchpoints" else 2
                assert st.broker_command("leader %s %d %d" % (
                    topic, p, leader)) == "ok"
        # statistics every 10 min: that a broker is back must be seen
        # otherwise (a message fetched, a commit answered)
        config = st.write_config(
            "kafka.consumer.statistics.interval.ms = 600000\n",
            session_ms=3000, http=True)
        jd = st.start_journeyd(config)

        feeder = st.feed(lines, CHUNK, PERIOD)

        def progress(*daemons):
            """Some more of the stream applied (all of it, near the end)."""
            st.wait_applied(min(st.applied_offsets() + 1000, len(lines)),
                            daemons, timeout=120)

        done = []
        for name, start, end in FAULTS:
            progress(jd)
            for c in start:
                assert st.broker_command(c) == "ok", c
            time.sleep(2)
            if name == "all brokers down":
                harness.wait_for("/healthz to say Kafka is unreachable",
                                 lambda: unreachable(st), 60)
            for c in end:
                assert st.broker_command(c) == "ok", c
            if name == "all brokers down":
                harness.wait_for("/healthz to say Kafka is back",
                                 lambda: not unreachable(st), 60)
            done.append(name)

        progress(jd)
        second = st.start_journeyd(   # the same, without the endpoint
            st.write_config(name="second.conf", session_ms=3000),
            "journeyd-second.log")
        harness.wait_for("the second instance to get partitions",
                         lambda: "assigned" in st.journeyd_log(second), 60)
        progress(jd, second)
        rc = st.stop_journeyd(second)
        assert rc == 0, "second journeyd exited %d:\n%s" % (
            rc, st.journeyd_log(second)[-3000:])
        done.append("second instance joined and left")

        feeder.join()
        st.wait_applied(len(lines), [jd], timeout=300)
        alerts = check_outcome(st, fold, exactly_once=False)

        # the cluster refuses journeyd a producer id (an ACL taken away):
        # each new producer fails fatally at its start. Each next one
        # comes after a delay that doubles: journeyd made them back to
        # back, thousands in seconds, until one failed while the one
        # before was still being flushed, and it exited. Six refusals,
        # then the seventh producer delivers what waited. (The events
        # come from a producer that asks for no id.)
        before = len(st.journeyd_log(jd))
        assert st.broker_command("error 22 6 31") == "ok"  # InitProducerId
        assert st.broker_command("brokererror 2 0 45") == "ok"
        refused = [{"customer_id": "pid-%d" % i, "type": "ad_click",
                    "ts": 1767225600000} for i in range(20)]
        st.produce_events(refused, idempotent=False)
        # meanwhile customers walk every stage, a step each at a time:
        # their alerts are held by producers that fail, and produced
        # while none is there; they must still come in order. So many
        # that a resend round takes a while, and a producer's refusal
        # can come in the middle of one: before backlogs kept the order
        # messages were first produced in, what that producer had taken
        # came back behind what still waited (2 runs of 3 failed)
        steps = ("ad_click", "product_view", "purchase", "repeat_purchase",
                 "referral")
        walkers = ["walk-%d" % i for i in range(WALKERS)]
        walk = []
        for i, t in enumerate(steps):
            step = [{"customer_id": c, "type": t,
                     "ts": 1767225600000 + 60000 * i} for c in walkers]
            st.produce_events(step, idempotent=False)
            walk += step
            time.sleep(0.3)
        refused += walk
        st.wait_applied(len(lines) + len(refused), [jd], timeout=120)
        log = st.journeyd_log(jd)[before:]
        delays = [int(d) for d in re.findall(
            r"kafka: replacing the producer in (\d+) ms", log)]
        assert len(delays) == 7 and log.count("producer replaced") == 7 \
            and all(b == max(100, 2 * a) for a, b in zip(delays,
                                                            delays[1:])), \
            (delays, log[-3000:])
        alerts_now = [json.loads(m["value"]) for m in
                      st.consume("journey.stage-change")]
        assert {ev["customer_id"] for ev in refused} <= {
            a["customer_id"] for a in alerts_now}
        walked = {c: [] for c in walkers}
        for a in alerts_now:
            seen = walked.get(a["customer_id"])
            if seen is not None and a["to"] not in seen:
                seen.append(a["to"])
        disordered = {c: w for c, w in walked.items() if w != [
            "awareness", "consideration", "decision", "retention",
            "loyalty"]}
        assert not disordered, "%d of %d walks out of order: %s" % (
            len(disordered), WALKERS, sorted(disordered.items())[:5])
        done.append("a producer id refused 6 times: 7 producers, each "
                    "after %s ms" % "/".join(map(str, delays)))

        rc = st.stop_journeyd(jd)
        log = st.journeyd_log(jd)
        assert rc == 0, "journeyd exited %d:\n%s" % (rc, log[-3000:])
        assert "kafka: producer replaced" in log, \
            "the fatal producer error was never seen:\n" + log[-3000:]

        # stopped while every broker is down: leaving the group cannot
        # finish, and would wait out the session timeout (45 s, the
        # librdkafka default, past systemd's TimeoutStopSec); journeyd
        # gives up at its drain deadline instead
        config = st.write_config("drain_timeout_ms = 3000\n",
                                 name="stop.conf", session_ms=45000)
        jd = st.start_journeyd(config, "journeyd-stop.log")
        harness.wait_for("partitions assigned",
                         lambda: "assigned" in st.journeyd_log(jd), 60)
        # offsets of its own to commit at the stop
        st.produce_events([{"customer_id": "stop-%d" % i, "type": "ad_click",
                            "ts": 1767225600000} for i in range(40)])
        st.wait_applied(len(lines) + len(refused) + 40, [jd])
        assert st.broker_command("down -1") == "ok"
        time.sleep(2)
        began = time.monotonic()
        rc = st.stop_journeyd(jd, timeout=30)
        stop_s = time.monotonic() - began
        assert st.broker_command("up -1") == "ok"
        log = st.journeyd_log(jd)
        assert rc == 0, "journeyd exited %d:\n%s" % (rc, log[-3000:])
        done.append("stopped with every broker down in %.1f s" % stop_s)

        # fenced (another consumer of its group.instance.id): a fatal error
        # librdkafka hands over among the messages; the group would hand
        # it nothing ever again, so journeyd exits for the service
        # manager to start it again (it used to log it and consume no
        # more, for good)
        jd = st.start_journeyd(st.write_config("group = fenced\n",
                                               name="fenced.conf"),
                               "journeyd-fenced.log")
        harness.wait_for("partitions assigned",
                         lambda: "assigned" in st.journeyd_log(jd), 60)
        assert st.broker_command("error 12 1 82") == "ok"  # Heartbeat
        harness.wait_for("journeyd to exit on the fatal error",
                         lambda: jd.poll() is not None, 60)
        log = st.journeyd_log(jd)
        assert jd.returncode == 1 and \
            "kafka consumer: fatal error" in log, log[-3000:]
        done.append("fenced: exited")
        print("kafka faults survived %d (%s); events checked %d, alerts %d "
              "for %d transitions: lost = 0, doubled = 0" % (
                  len(done), "; ".join(done), len(lines), len(alerts),
                  len(set(fold.transitions))))


if __name__ == "__main__":
    sys.exit(main())
