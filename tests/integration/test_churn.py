"""test_churn.py: churn risk through the real stack, on the wall clock.

With a one-second cadence and churn after four seconds of silence:
- a customer who goes silent is flagged by journeyd's own timers, with no
  event of theirs: churn_risk medium, then high, then churned, each alert
  carrying the deadline as its time and the inactivity as its reason, and
  the customer leaves the deadline index once churned;
- when that customer comes back: a reactivated alert, and the risk falls
  (in the list of changes, without an alert);
- three complaints raise another customer's risk at once, with the event
  as the cause and pain points and sentiment as reasons;
- a customer's second event does not move its deadline index entry
  later (it stays at the first event's deadline, and the timer that takes
  it early finds nothing due), yet its alerts come at its own deadlines;
  an entry deleted by hand comes back within 8 writes of the customer;
- the list of changes holds every change in order, the customer state the
  risk fields, and the journey map's gauges (at risk, churned) follow.
Prints how long after each deadline its alert was produced (measured, not
asserted).
"""
import collections
import json
import subprocess
import sys
import time

import harness

AHEAD = 20000   # ms: busy's and lost's events, ahead of the others
CONFIG = """\
churn.cadence = 1s
churn.after = 4s
segments = vip
"""


def event(cid, etype, ts, **extra):
    return "%s\t%s" % (cid, json.dumps(dict(customer_id=cid, type=etype,
                                            ts=ts, **extra)))


def next_deadline(st, config, cid):
    out = subprocess.run([st.bin["journeyctl"], "-f", config, "customer",
                          cid], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    return [line.split()[-1] for line in out.splitlines()
            if line.strip().startswith("next deadline")][0]


def churn_alerts(st, cid):
    return [dict(json.loads(m["value"]), kafka_ts=m["timestamp"])
            for m in st.consume("journey.churn-risk")
            if m["key"] == cid]


def history(st, cid):
    return st.redis.changes(cid)


def main():
    with harness.Stack(harness.build_dir(), "churn") as st:
        config = st.write_config(CONFIG, clock="wall")
        jd = st.start_journeyd(config)
        harness.wait_for("partitions assigned",
                         lambda: "assigned" in st.journeyd_log(jd), 60)
        t0 = int(time.time() * 1000)
        st.produce("touchpoints", [
            event("quiet", "ad_click", t0, segment="vip", channel="web"),
            event("angry", "purchase", t0),
            event("angry", "complaint", t0 + 1, channel="call_centre"),
            event("angry", "complaint", t0 + 2, channel="call_centre"),
            event("angry", "complaint", t0 + 3, channel="email"),
            # ahead: their first deadlines must not fall due before
            # the test has looked, however slow this machine
            event("busy", "ad_click", t0 + AHEAD, channel="web"),
            event("busy", "ad_click", t0 + AHEAD + 1000, channel="web"),
            event("lost", "ad_click", t0 + AHEAD, channel="web"),
        ])
        busy = harness.wait_for(
            "busy's two events",
            lambda: (lambda c: c if c.get("events") == "2" else None)(
                st.redis.customer("busy")), 30)
        # the state and its index entry as one snapshot, a timer's write
        # cannot come between them; the time taken after it
        st.redis("MULTI")
        st.redis("GET", "journey:{busy}")
        st.redis("ZSCORE", "journey:due:" + busy["home"], "busy")
        packed, entry = st.redis("EXEC", raw=True)
        read_ms = int(time.time() * 1000)
        busy = harness.unpack_customer(
            packed, st.redis("LRANGE", "journey:names", 0, -1))
        # the index holds what the state says it does
        assert int(entry) == harness.parse_iso_ms(busy["indexed"]), busy
        busy_due = harness.parse_iso_ms(next_deadline(st, config, "busy"))
        # read before its first event's deadline fell due: the entry is
        # still there, earlier than the deadline the second event moved
        # on to
        assert read_ms < t0 + AHEAD + 2000, "read too late to tell"
        assert busy_due > t0 + AHEAD + 2200, (busy_due - t0, busy)
        assert int(entry) == t0 + AHEAD + 2200, (int(entry) - t0, busy)
        # the lost customer: its entry deleted by hand before it could
        # fall due, then events one write at a time, which leave the entry
        # where it was: one of every 8 writes puts it back
        lost = harness.wait_for("lost's event",
                                lambda: st.redis.customer("lost"), 30)
        lost_writes = 0
        due_key = "journey:due:" + lost["home"]
        st.redis("ZREM", due_key, "lost")
        assert int(time.time() * 1000) < t0 + AHEAD + 2000, "too late"
        while st.redis("ZSCORE", due_key, "lost") is None:
            assert lost_writes < 8, "lost's entry did not come back"
            lost_writes += 1
            st.produce("touchpoints", [event(
                "lost", "ad_click", int(time.time() * 1000) + AHEAD,
                channel="web")])
            harness.wait_for(
                "lost's event %d" % lost_writes,
                lambda: st.redis.customer("lost")["events"] ==
                str(1 + lost_writes), 30)

        # the silent customer: three alerts from the timers alone
        alerts = harness.wait_for(
            "quiet to churn",
            lambda: (lambda a: a if len(a) >= 3 else None)(
                churn_alerts(st, "quiet")), 60)
        got = [(a["type"], a.get("previous"), a.get("level")) for a in alerts]
        assert got == [("churn_risk", "low", "medium"),
                       ("churn_risk", "medium", "high"),
                       ("churned", None, None)], got
        deadlines = [t0 + 2200, t0 + 3000, t0 + 4000]
        for a, d in zip(alerts, deadlines):
            assert a["cause"] == "inactivity", a
            assert a["stage"] == "awareness", a
            assert "event" not in a, a
            at = harness.parse_iso_ms(a["at"])
            assert d <= at <= d + 1, (a["at"], d)
            assert a["kafka_ts"] >= d, "alert produced before its deadline"
        assert a["reasons"] == ["inactive 4s, cadence 1s"], a
        assert len({a["alert_id"] for a in alerts}) == 3
        delays = [a["kafka_ts"] - d for a, d in zip(alerts, deadlines)]

        # written after its alert was delivered
        quiet = harness.wait_for(
            "quiet's churn written",
            lambda: (lambda c: c if "churned" in c else None)(
                st.redis.customer("quiet")), 30)
        assert quiet["risk_level"] == "high", quiet
        assert harness.parse_iso_ms(quiet["churned"]) == t0 + 4000, quiet
        # a churned customer has no deadline
        assert st.redis("ZSCORE", "journey:due:" + quiet["home"],
                        "quiet") is None
        # both churn (angry 3 ms after quiet): the at-risk list keeps neither
        harness.wait_for(
            "quiet and angry to leave the at-risk list",
            lambda: all(st.redis("ZSCORE", "journey:at_risk", cid) is None
                        for cid in ("quiet", "angry")), 30)
        vip = st.redis.hgetall("journey:map:vip")
        assert vip.get("awareness:churned") == "1", vip
        # churned, no longer counted as at risk
        assert vip.get("awareness:high_risk") == "0", vip
        assert vip.get("awareness:high_risk_entries") == "1", vip
        assert vip.get("awareness:churns") == "1", vip

        alerts = harness.wait_for(
            "lost's alerts",
            lambda: (lambda a: a if len(a) >= 3 else None)(
                churn_alerts(st, "lost")), 60)
        assert alerts[-1]["type"] == "churned", alerts

        # the busy customer: alerts at its own deadlines, not at the
        # entry its first event left
        alerts = harness.wait_for(
            "busy to churn",
            lambda: (lambda a: a if len(a) >= 3 else None)(
                churn_alerts(st, "busy")), 60)
        got = [(a["type"], a.get("level")) for a in alerts]
        assert got == [("churn_risk", "medium"), ("churn_risk", "high"),
                       ("churned", None)], got
        assert harness.parse_iso_ms(alerts[0]["at"]) == busy_due, (
            alerts[0]["at"], busy_due - t0)
        assert harness.parse_iso_ms(alerts[2]["at"]) == t0 + AHEAD + 5000, \
            alerts
        harness.wait_for(
            "busy's churn written: no deadline entry",
            lambda: st.redis("ZSCORE", "journey:due:" + busy["home"],
                             "busy") is None, 30)

        # the complaining customer: risk from the events themselves
        angry = [a for a in churn_alerts(st, "angry")
                 if a["type"] == "churn_risk" and a["cause"] == "event"]
        assert angry and angry[0]["level"] == "medium", angry
        assert angry[0]["event"]["type"] == "complaint", angry
        assert "3.0 pain points" in angry[0]["reasons"], angry
        assert "sentiment -0.80" in angry[0]["reasons"], angry
        other = st.redis.hgetall("journey:map:other")
        assert other.get("decision:pain:complaint") == "3", other
        assert other.get("decision:sent_n") == "3", other
        assert other.get("decision:sent_milli") == "-2400", other

        # a customer whose hash went (evicted, deleted by hand) but whose
        # deadline entry stayed: the entry goes, no hash comes back
        st.produce("touchpoints", [event("ghost", "ad_click",
                                         int(time.time() * 1000))])
        ghost_due = harness.wait_for(
            "ghost's deadline entry",
            lambda: st.redis.customer("ghost").get("home"), 30)
        st.redis("DEL", "journey:{ghost}")
        harness.wait_for(
            "the ghost's entry to go",
            lambda: st.redis("ZSCORE", "journey:due:" + ghost_due,
                             "ghost") is None, 30)
        assert st.redis("EXISTS", "journey:{ghost}") == 0

        # an index entry no customer id could be (too long): dropped, or it
        # would come back first in every scan
        stranger = "x" * 300
        st.redis("ZADD", "journey:due:" + ghost_due, 0, stranger)
        harness.wait_for(
            "the overlong entry to go",
            lambda: st.redis("ZSCORE", "journey:due:" + ghost_due,
                             stranger) is None, 30)

        # the silent customer comes back
        t1 = int(time.time() * 1000)
        st.produce("touchpoints", [event("quiet", "purchase", t1,
                                         segment="vip", channel="store")])
        back = harness.wait_for(
            "quiet to come back",
            lambda: [a for a in churn_alerts(st, "quiet")
                     if a["type"] == "reactivated"], 60)
        assert len(back) == 1 and back[0]["event"]["type"] == "purchase"
        assert back[0]["stage"] == "decision", back
        # written after its alert; the risk fell with the same event (the
        # state itself may be at risk again by the time it is read)
        harness.wait_for(
            "quiet's return written",
            lambda: st.redis.customer("quiet")["events"] == "2", 30)
        vip = st.redis.hgetall("journey:map:vip")
        assert vip.get("awareness:churned") == "0", vip
        assert vip.get("awareness:in") == "0", vip
        assert vip.get("decision:in") == "1", vip
        assert vip.get("decision:reactivations") == "1", vip
        assert vip.get("awareness>decision") == "1", vip

        kinds = [(h["kind"], h["from"], h["to"]) for h in history(st, "quiet")]
        assert kinds[:6] == [
            ("stage", "", "awareness"), ("risk", "low", "medium"),
            ("risk", "medium", "high"), ("churned", "awareness", "awareness"),
            ("stage", "awareness", "decision"),
            ("reactivated", "decision", "decision")], kinds
        fell = history(st, "quiet")[6]
        assert (fell["kind"], fell["from"], fell["to"]) == (
            "risk", "high", "low"), kinds
        assert harness.parse_iso_ms(fell["at"]) == t1, fell
        # stopped, journeyd has written every batch whose alerts it sent,
        # and sends no more (quiet's deadlines after it came back would):
        # every alert is in the history and counted
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
        ids = {a["alert_id"] for a in churn_alerts(st, "quiet")}
        assert {h["alert_id"] for h in history(st, "quiet")
                if h["kind"] != "stage" and h["alert_id"]} == ids
        counters = {k: int(v) for k, v in
                     st.redis.hgetall("journey:alerts").items()}
        churn = collections.Counter(a["type"] for a in
                                    churn_alerts(st, "quiet") +
                                    churn_alerts(st, "angry") +
                                    churn_alerts(st, "busy") +
                                    churn_alerts(st, "lost"))
        stage = len(st.consume("journey.stage-change"))
        assert counters == dict(churn, stage_change=stage), (counters, churn)
        print("silent customer flagged by timers: medium, high, churned; "
              "alert produced %s ms after each deadline" % delays)
        print("complaints raised risk at once; reactivation, history, map "
              "gauges and deadline index checked")
        print("a second event left the index entry at the first deadline; "
              "an index entry deleted by hand came back after %d writes"
              % lost_writes)


if __name__ == "__main__":
    sys.exit(main())
