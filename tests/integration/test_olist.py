"""test_olist.py: a real marketing funnel replayed, conversion per channel.

The Olist marketing funnel (../shared/data; skipped when absent): 8,000
marketing-qualified leads, each with an acquisition channel, and the 842
deals closed with them, in event-time order. Each lead's first contact is
awareness, a won deal is decision (one jump over consideration), and the
channel is both the touchpoint and the segment. An independent count from
the file of leads and deals per channel must equal, exactly, the journey
map's entries into awareness and conversions awareness -> decision in each
channel's map hash; the funnel's stage counts must match too.
"""
import collections
import csv
import datetime
import gzip
import sys

import harness

DATA = "olist_marketing_funnel_events_2017-06_2018-11.csv.gz"
CHANNELS = ["organic_search", "paid_search", "social", "unknown",
            "direct_traffic", "email", "referral", "other", "display",
            "other_publicities"]
CONFIG = """\
stage.awareness = mql_first_contact
stage.consideration = sdr_meeting
stage.decision = deal_won
segments = %s
""" % ", ".join(CHANNELS)
TOPICS = {"touchpoints": 4, "journey.stage-change": 4,
          "journey.churn-risk": 8, "journey.dead-letter": 1}


def funnel(path):
    events = []
    with gzip.open(path, "rt", newline="") as f:
        for row in csv.reader(f):
            lead, when, etype, channel = row[:4]
            if lead == "lead_id":
                continue
            t = datetime.datetime.strptime(when, "%Y-%m-%d %H:%M:%S")
            ev = {"customer_id": lead, "type": etype,
                  "ts": int(t.replace(tzinfo=datetime.timezone.utc)
                            .timestamp()) * 1000}
            if channel:
                ev["channel"] = ev["segment"] = channel
            events.append(ev)
    return events


def expected(events):
    """Leads entering awareness and converting to decision, per channel,
    and the final stage counts, following the README's rules."""
    stage, segment = {}, {}
    entries, conversions = collections.Counter(), collections.Counter()
    order = {"mql_first_contact": 0, "deal_won": 2}
    for ev in events:
        cid, to = ev["customer_id"], order[ev["type"]]
        if ev.get("segment"):
            segment[cid] = ev["segment"]
        seg = segment.get(cid, "")
        seg = seg if seg in CHANNELS else "other"
        if cid not in stage:
            stage[cid] = to
            if to == 0:
                entries[seg] += 1
        elif to > stage[cid]:
            conversions[seg] += stage[cid] == 0
            stage[cid] = to
    names = ["awareness", "consideration", "decision"]
    return entries, conversions, collections.Counter(names[s] for s in
                                                     stage.values())


def main():
    path = harness.shared_data(DATA)
    if path is None:
        return harness.SKIP
    events = funnel(path)
    entries, conversions, stages = expected(events)
    with harness.Stack(harness.build_dir(), "olist", topics=TOPICS) as st:
        jd = st.start_journeyd(st.write_config(CONFIG))
        st.produce_events(events)
        st.wait_applied(len(events), [jd], timeout=600)
        problems, rates = [], []
        for ch in CHANNELS:
            m = st.redis.hgetall("journey:map:" + ch)
            got = (int(m.get("awareness:entries", 0)),
                   int(m.get("awareness>decision", 0)))
            want = (entries[ch], conversions[ch])
            if got != want:
                problems.append("%s: leads, deals %r, expected %r" %
                                (ch, got, want))
            if want[0]:
                rates.append("%s %.1f%%" % (ch, 100.0 * want[1] / want[0]))
            if got[1] and not int(m.get("awareness>decision:ms", 0)) > 0:
                problems.append("%s: no time to convert" % ch)
        got_stages = {k: int(v) for k, v in
                      st.redis.hgetall("journey:stages").items() if int(v)}
        if got_stages != dict(stages):
            problems.append("stages %r, expected %r" % (got_stages,
                                                         dict(stages)))
        assert not problems, "\n".join(problems)
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
        print("Olist funnel: %d events, %d leads, %d deals; conversion per "
              "channel equals the file: %s" %
              (len(events), sum(entries.values()),
               sum(conversions.values()), ", ".join(rates)))


if __name__ == "__main__":
    sys.exit(main())
