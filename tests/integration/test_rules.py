"""test_rules.py: stage rules of every form through the real stack.

A custom model with plain, count, property and demotion rules; a few
customers whose events exercise each; then Redis holds the expected
stages and stage counts, every stage change (the demotion included) is on
the alert topic once, and each customer's list of changes holds exactly
those changes with the alert_ids of the alerts.
"""
import json
import sys

import harness

CONFIG = """\
stage.lead = visit
stage.trial = trial_start, demo.minutes >= 30
stage.customer = purchase, invoice.value > 1000
stage.fan = purchase >= 3, survey.nps >= 9
demote.trial = plan_cancelled
"""

# customer -> [(type, extra fields)], and the stages it must pass through
JOURNEYS = {
    "c-count": ([("visit", {}), ("purchase", {}), ("purchase", {}),
                 ("purchase", {})],
                [None, "lead", "customer", "fan"]),
    "c-prop": ([("demo", {"properties": {"minutes": 10}}),
                ("demo", {"properties": {"minutes": 45}}),
                ("invoice", {"value": 900}), ("invoice", {"value": 1500})],
               [None, "lead", "trial", "customer"]),
    "c-demote": ([("survey", {"properties": {"nps": 10}}),
                  ("plan_cancelled", {}), ("plan_cancelled", {})],
                 [None, "fan", "trial"]),
    "c-dup": ([("visit", {"event_id": "x1"}),
               ("trial_start", {"event_id": "x2"}),
               ("trial_start", {"event_id": "x2"})],
              [None, "lead", "trial"]),
}


FLAPS = 30000		# more changes in a batch than Lua's unpack takes
CHANGES_KEPT = 64


def check_flapping(st, ts):
    """A customer whose every event changes its stage (purchase, then
    demoted by plan_cancelled), thousands of times in one batch: every
    alert goes out and its list keeps the latest changes."""
    lines = []
    for i in range(FLAPS):
        ts += 1000
        ev = dict(customer_id="c-flap", ts=ts,
                  type="purchase" if i % 2 == 0 else "plan_cancelled")
        lines.append("c-flap\t" + json.dumps(ev))
    before = st.applied_offsets()
    sent_before = int(st.redis("HGET", "journey:alerts", "stage_change"))
    st.produce("touchpoints", lines)
    jd = st.start_journeyd(st.write_config(
        CONFIG + "batch_max = 40000\nmax_inflight = 40000\n",
        name="flap.conf"))
    st.wait_applied(before + FLAPS, [jd])
    assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
    # the topic keeps only the latest alerts (the mock broker keeps about
    # 5 MB a partition): the counter says how many went out
    sent = int(st.redis("HGET", "journey:alerts", "stage_change"))
    assert sent == sent_before + FLAPS, (sent, sent_before, FLAPS)
    alerts = [json.loads(m["value"]) for m in
              st.consume("journey.stage-change")]
    alerts = [a["alert_id"] for a in alerts if a["customer_id"] == "c-flap"]
    kept = st.redis.changes("c-flap")
    assert len(kept) == CHANGES_KEPT, len(kept)
    # the latest stage changes, in order (the list may hold risk changes)
    staged = [c["alert_id"] for c in kept if c["kind"] == "stage"]
    assert staged and staged == alerts[-len(staged):], kept[-3:]
    return FLAPS


def check_unreadable(st, ts):
    """A customer key that holds no packed state (garbage, or a hash as
    builds before the packed form wrote) is left as it is: the customer's
    events go to the dead-letter topic with the reason, the others go on."""
    st.redis("SET", "journey:{c-garbage}", "not a journey state")
    st.redis("HSET", "journey:{c-hash}", "stage", "lead", "v", "3")
    lines = ["%s\t%s" % (cid, json.dumps(dict(customer_id=cid, ts=ts + 1000,
                                               type="visit")))
             for cid in ("c-garbage", "c-hash", "c-fresh")]
    before = st.applied_offsets()
    dead_before = len(st.consume("journey.dead-letter"))
    st.produce("touchpoints", lines)
    jd = st.start_journeyd(st.write_config(CONFIG, name="unreadable.conf"))
    st.wait_applied(before + len(lines), [jd])
    assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
    dead = st.consume("journey.dead-letter")[dead_before:]
    reasons = sorted((json.loads(m["value"])["customer_id"],
                      m["headers"].get("reason")) for m in dead)
    assert reasons == [(cid, "stored state of this customer is unreadable")
                       for cid in ("c-garbage", "c-hash")], reasons
    assert st.redis("GET", "journey:{c-garbage}") == "not a journey state"
    assert st.redis.hgetall("journey:{c-hash}") == {"stage": "lead",
                                                    "v": "3"}
    assert st.redis.customer("c-fresh").get("stage") == "lead"


def main():
    with harness.Stack(harness.build_dir(), "rules") as st:
        lines, ts = [], 1767225600000
        for cid, (events, _) in JOURNEYS.items():
            for etype, extra in events:
                ts += 60000
                ev = dict(customer_id=cid, type=etype, ts=ts, **extra)
                lines.append("%s\t%s" % (cid, json.dumps(ev)))
        jd = st.start_journeyd(st.write_config(CONFIG))
        st.produce("touchpoints", lines)
        st.wait_applied(len(lines), [jd])
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]

        alerts = [json.loads(m["value"])
                  for m in st.consume("journey.stage-change")]
        problems = []
        for cid, (events, path) in JOURNEYS.items():
            want = list(zip(path, path[1:]))
            got = [(a["from"], a["to"]) for a in alerts
                   if a["customer_id"] == cid]
            if sorted(got, key=str) != sorted(want, key=str):
                problems.append("%s: alerts %r, expected %r" %
                                (cid, got, want))
            h = st.redis.customer(cid)
            if h.get("stage") != path[-1]:
                problems.append("%s: stage %r, expected %r" %
                                (cid, h.get("stage"), path[-1]))
            fields = [f for f in st.redis.changes(cid)
                      if f["kind"] == "stage"]
            if [(f["from"] or None, f["to"]) for f in fields] != want:
                problems.append("%s: history %r, expected %r" %
                                (cid, fields, want))
            ids = {a["alert_id"] for a in alerts if a["customer_id"] == cid}
            if {f["alert_id"] for f in fields} != ids:
                problems.append("%s: history alert_ids differ from alerts" %
                                cid)
        dup = st.redis.customer("c-dup")
        if dup.get("events") != "2" or dup.get("n:trial_start") != "1":
            problems.append("c-dup: the repeated event_id was applied "
                            "twice: %r" % dup)
        counts = {k: int(v) for k, v in
                  st.redis.hgetall("journey:stages").items() if int(v)}
        want_counts = {}
        for _, path in JOURNEYS.values():
            want_counts[path[-1]] = want_counts.get(path[-1], 0) + 1
        if counts != want_counts:
            problems.append("stage counts %r, expected %r" %
                            (counts, want_counts))
        assert not problems, "\n".join(problems)
        flaps = check_flapping(st, ts)
        check_unreadable(st, ts + FLAPS * 1000)
        print("rule forms checked: plain, count, property (value and "
              "properties), demotion, duplicate event_id; %d customers, %d "
              "alerts, history equals alerts; a customer changing stage %d "
              "times in a few batches keeps its latest %d changes; "
              "unreadable stored states dead-lettered, left as they were" %
              (len(JOURNEYS), len(alerts), flaps, CHANGES_KEPT))


if __name__ == "__main__":
    sys.exit(main())
