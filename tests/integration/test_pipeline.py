"""test_pipeline.py: a realistic stream in, Redis state and alerts out.

Checks, against real redis-server and the mock-cluster broker:
- every customer's hash equals an independent fold of the events, some of
  them sent twice (a producer's retry: the same event_id), late, in the
  same millisecond as the customer's last, or without a channel;
- exactly one stage-change alert per transition, with unique alert_ids;
- every bad event is on the dead-letter topic with a reason header, and
  the good events around them are all applied.
"""
import collections
import json
import sys

import harness
from fold import Fold, check_alerts, compare_state

CUSTOMERS, EVENTS, BAD_PER_THOUSAND, DISORDER_PCT = 800, 12000, 6, 8


def main():
    with harness.Stack(harness.build_dir(), "pipeline") as st:
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 7,
                           "-b", BAD_PER_THOUSAND, "-d", DISORDER_PCT)
        fold = Fold(lines)
        assert fold.bad > 0, "the stream should hold bad events"
        # and events sent twice, late, tied and without a channel
        assert all(fold.disorder[k] > 0 for k in (
            "repeated", "late", "tied", "no channel")), fold.disorder
        jd = st.start_journeyd()
        st.produce("touchpoints", lines)
        st.wait_applied(len(lines), [jd])

        problems = compare_state(st.redis, fold)
        assert not problems, "\n".join(problems[:20])

        messages = st.consume("journey.stage-change")
        alerts = [json.loads(m["value"]) for m in messages]
        problems = check_alerts(alerts, fold, exactly_once=True)
        assert not problems, "\n".join(problems)
        ids = [a["alert_id"] for a in alerts]
        assert len(set(ids)) == len(ids), "alert_ids are not unique"
        for a in alerts[:50]:
            for field in ("alert_id", "type", "customer_id", "from", "to",
                          "at", "event", "source"):
                assert field in a, "alert lacks %s: %r" % (field, a)
            assert a["type"] == "stage_change"
        keyed = [m for m in messages
                 if m["key"] != json.loads(m["value"])["customer_id"]]
        assert not keyed, "alerts must be keyed by customer"
        # partitioned as the Java clients (and ktool) do: an alert is in
        # the partition its customer's events are in (4 of each)
        moved = [m for m in messages
                 if json.loads(m["value"])["source"]["partition"] !=
                 m["partition"]]
        assert not moved, "%d alerts not in their events' partition: %r" % (
            len(moved), moved[:2])

        dead = st.consume("journey.dead-letter")
        assert len(dead) == fold.bad, "dead letters: %d, bad events: %d" % (
            len(dead), fold.bad)
        for m in dead:
            assert m["headers"].get("reason"), "dead letter without reason"
            assert m["headers"].get("source", "").startswith("touchpoints/")
        reasons = collections.Counter(m["headers"]["reason"].split(" at ")[0]
                                      for m in dead)

        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
        print("events %d (good %d, bad %d), customers %d, alerts %d, "
              "dead letters %d %s" % (len(lines), fold.good, fold.bad,
                                      len(fold.customers), len(alerts),
                                      len(dead), dict(reasons)))
        print("state equals the fold: lost = 0, doubled = 0")


if __name__ == "__main__":
    sys.exit(main())
