"""test_uci.py: a year of a real shop replayed on the event clock.

The UCI Online Retail invoices (../shared/data; skipped when absent), one
event per invoice in date order: a purchase, or a refund (a pain point) for
a cancellation, with the invoice total as value and the country as
segment. journeyd runs with clock = event, so deadlines fall due by stream
time as they would have live. An independent computation from the file
gives each customer's stage (1 purchase: decision, 2-4: retention, 5 or
more: loyalty, none: awareness) and the churn episodes (a silence of more
than churn.after, 90 days, between two invoices: churned then reactivated;
at the end of the stream: churned). Redis stage counts, the map's churned
gauges and the churned/reactivated alerts must equal it exactly.
"""
import collections
import csv
import datetime
import gzip
import json
import sys

import harness

DATA = "online_retail_uci_2010-12_2011-12.csv.gz"
CHURN_AFTER_MS = 90 * 86400 * 1000
LATENESS_MS = 3600 * 1000
SEGMENTS = ["United Kingdom", "Germany", "France", "EIRE"]
CONFIG = """\
clock.lateness = 1h
segments = %s
""" % ", ".join(SEGMENTS)
TOPICS = {"touchpoints": 1, "journey.stage-change": 4,
          "journey.churn-risk": 8, "journey.dead-letter": 1}


def epoch_ms(text):
    t = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000


def invoices(path):
    """One event per invoice with a customer, in the file's (date) order."""
    events = collections.OrderedDict()
    with gzip.open(path, "rt", newline="") as f:
        for row in csv.reader(f):
            number, _, _, qty, date, price, customer, country = row
            if number == "InvoiceNo" or not customer:
                continue  # a header line; guests and stock adjustments
            ev = events.get(number)
            if ev is None:
                ev = events[number] = {
                    "customer_id": customer.split(".")[0],
                    "type": "refund" if number.startswith("C") else
                    "purchase",
                    "ts": epoch_ms(date), "event_id": number,
                    "segment": country, "value": 0.0}
            ev["value"] += float(qty) * float(price)
    return list(events.values())


def expected(events):
    """Stages, churn episodes and the final churned set, from the file."""
    purchases = collections.Counter()
    times = collections.defaultdict(list)
    for ev in events:
        if ev["type"] == "purchase":
            purchases[ev["customer_id"]] += 1
        times[ev["customer_id"]].append(ev["ts"])
    stages = collections.Counter()
    for cid in times:
        n = purchases[cid]
        stages["awareness" if n == 0 else "decision" if n == 1 else
               "retention" if n < 5 else "loyalty"] += 1
    clock = max(ev["ts"] for ev in events) - LATENESS_MS
    gaps = sum(1 for ts in times.values() for a, b in zip(ts, ts[1:])
               if b - a > CHURN_AFTER_MS)
    churned = {cid for cid, ts in times.items()
               if ts[-1] + CHURN_AFTER_MS <= clock}
    return stages, gaps, churned, clock


def main():
    path = harness.shared_data(DATA)
    if path is None:
        return harness.SKIP
    events = invoices(path)
    stages, gaps, churned, clock = expected(events)
    with harness.Stack(harness.build_dir(), "uci", topics=TOPICS) as st:
        jd = st.start_journeyd(st.write_config(CONFIG))
        st.produce_events(events)
        st.wait_applied(len(events), [jd], timeout=600)
        # the last deadlines fall due once the stream clock reaches them
        harness.wait_for("deadlines up to the stream clock to be settled",
                         lambda: st.redis("ZCOUNT", "journey:due:touchpoints/0",
                                          "-inf", clock) == 0, 120)
        got_stages = {k: int(v) for k, v in
                      st.redis.hgetall("journey:stages").items() if int(v)}
        assert got_stages == dict(stages), (got_stages, dict(stages))

        gauges = collections.Counter()
        for key in st.redis.scan_keys("journey:map:*"):
            for field, v in st.redis.hgetall(key).items():
                if field.endswith(":churned"):
                    gauges[key[len("journey:map:"):]] += int(v)
        assert sum(gauges.values()) == len(churned), (gauges, len(churned))
        by_segment = collections.Counter()
        last_segment = {ev["customer_id"]: ev["segment"] for ev in events}
        for cid in churned:
            s = last_segment[cid]
            by_segment[s if s in SEGMENTS else "other"] += 1
        assert {k: v for k, v in gauges.items() if v} == dict(by_segment), \
            (gauges, by_segment)

        kinds = collections.Counter()
        ids = collections.defaultdict(set)
        for m in st.consume("journey.churn-risk"):
            a = json.loads(m["value"])
            kinds[a["type"]] += 1
            ids[a["type"]].add(a["alert_id"])
        # alerts are at least once; their ids are exact
        assert len(ids["churned"]) == gaps + len(churned), \
            (len(ids["churned"]), gaps, len(churned))
        assert len(ids["reactivated"]) == gaps, (len(ids["reactivated"]), gaps)
        # the at-risk list holds exactly the customers at medium or high
        # risk who have not churned, by score
        at_risk = st.redis("ZRANGE", "journey:at_risk", 0, -1, "WITHSCORES")
        at_risk = dict(zip(at_risk[0::2], at_risk[1::2]))
        want_at_risk = {}
        for cid in {ev["customer_id"] for ev in events}:
            h = st.redis.customer(cid)
            assert ("churned" in h) == (cid in churned), (cid, h)
            # a deadline in its partition's index unless churned
            due = st.redis("ZSCORE", "journey:due:" + h["home"], cid)
            assert (due is None) == (cid in churned), (cid, h, due)
            if h["risk_level"] != "low" and "churned" not in h:
                want_at_risk[cid] = h["risk"]
        assert {k: float(v) for k, v in at_risk.items()} == \
            {k: float(v) for k, v in want_at_risk.items()}
        assert at_risk, "no customer at risk: the check above proved nothing"
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
        print("UCI Online Retail: %d invoices of %d customers; stages %s" %
              (len(events), sum(stages.values()), dict(stages)))
        print("churn: %d silences over 90 days came back (reactivated), %d "
              "customers churned at the end (stream clock %s), %d at risk; "
              "alerts %s" %
              (gaps, len(churned),
               datetime.datetime.utcfromtimestamp(clock / 1000).date(),
               len(at_risk), dict(kinds)))


if __name__ == "__main__":
    sys.exit(main())
