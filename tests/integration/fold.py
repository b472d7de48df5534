"""fold.py: an independent computation of what journeyd must produce.

Written from the README's rules, not from the C code: given the touchpoint
stream in produce order, it computes each customer's journey state, the
stage changes (the alerts journeyd must send) and which events are bad.
"""
import collections
import datetime
import json

DEFAULT_STAGES = [
    ("awareness", ["ad_click", "search_visit", "social_post", "blog_read"]),
    ("consideration", ["product_view", "pricing_view", "comparison",
                       "demo_request", "trial_start", "add_to_cart"]),
    ("decision", ["checkout", "purchase", "contract_signed"]),
    ("retention", ["repeat_purchase", "renewal", "login", "support_resolved",
                   "purchase >= 2"]),
    ("loyalty", ["referral", "review_positive", "purchase >= 5"]),
]
ACTIONS_MAX = 12  # event types counted per customer (README)
CHANNELS_MAX = 8  # channels counted per customer (README)
IDS_MAX = 4       # recent event_ids remembered per customer (README)


def parse_rule(text):
    """'type' or 'type >= N' (the count forms the default model uses)."""
    parts = text.split()
    if len(parts) == 1:
        return parts[0], None
    kind, op, n = parts
    assert op == ">=", "the fold knows only >= count rules"
    return kind, float(n)


def iso(ms):
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def parse_ts(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return int(v)
    t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1000)


def parse_line(line):
    """(customer_id, event dict) or (None, reason-ish) for a bad line."""
    key, _, value = line.partition("\t") if "\t" in line else ("", "", line)
    try:
        ev = json.loads(value)
    except ValueError:
        return None, "invalid JSON"
    if not isinstance(ev, dict):
        return None, "not an object"
    cid = ev.get("customer_id")
    if cid is None:
        cid = key or None
    if cid is None:
        return None, "no customer"
    if not isinstance(ev.get("type"), str) or not ev["type"]:
        return None, "no type"
    return str(cid), ev


class Fold:
    def __init__(self, lines=(), stages=DEFAULT_STAGES):
        self.stages = [s for s, _ in stages]
        self.rules = {}  # type -> [(stage, count threshold or None)]
        for i, (_, texts) in enumerate(stages):
            for t in texts:
                kind, n = parse_rule(t)
                self.rules.setdefault(kind, []).append((i, n))
        self.customers = {}
        self.transitions = []  # (customer, from or None, to)
        # transition -> what its alert says of the event that made it
        self.triggers = {}
        # the journey map's flow counters (README "Journey map"); the
        # tests configure no segments, so all count under "other"
        self.map = collections.Counter()
        self.bad = 0
        self.good = 0
        # how many events took each of the paths of a disordered stream
        self.disorder = collections.Counter()
        for line in lines:
            self.add(line)

    def add(self, line):
        cid, ev = parse_line(line)
        if cid is None:
            self.bad += 1
            return
        self.good += 1
        ts = parse_ts(ev["ts"])
        c = self.customers.get(cid)
        if c is None:
            c = self.customers[cid] = {"stage": None, "events": 0,
                                       "first_seen": ts, "last_seen": ts,
                                       "last_channel": "", "stage_at": 0,
                                       "counts": {}, "ids": [],
                                       "transitions": 0, "channels": {},
                                       "segment": "", "value": 0.0,
                                       "entered": {}}
        eid = ev.get("event_id")
        if eid:
            if eid in c["ids"]:
                self.disorder["repeated"] += 1
                return  # a producer's duplicate: applied once
            c["ids"] = (c["ids"] + [eid])[-IDS_MAX:]
        if c["events"] > 0 and ts <= c["last_seen"]:
            self.disorder["late" if ts < c["last_seen"] else "tied"] += 1
        if not ev.get("channel"):
            self.disorder["no channel"] += 1
        c["first_seen"] = min(c["first_seen"], ts)
        if ts >= c["last_seen"] or c["events"] == 0:
            c["last_seen"] = ts
            if ev.get("channel"):
                c["last_channel"] = ev["channel"]
            if ev.get("segment"):
                c["segment"] = ev["segment"]
        c["events"] += 1
        if ev.get("channel"):
            ch = ev["channel"]
            c["channels"][ch] = c["channels"].get(ch, 0) + 1
        if ev.get("value") is not None:
            c["value"] += ev["value"]
        n = c["counts"][ev["type"]] = c["counts"].get(ev["type"], 0) + 1
        target = None
        for stage, threshold in self.rules.get(ev["type"], ()):
            if threshold is None or n >= threshold:
                target = stage if target is None else max(target, stage)
        if target is None and c["stage"] is None:
            target = 0
        if target is not None and (c["stage"] is None or target > c["stage"]):
            frm = None if c["stage"] is None else self.stages[c["stage"]]
            self.transitions.append((cid, frm, self.stages[target]))
            self.triggers[(cid, frm, self.stages[target])] = {
                "at": iso(ts), "event": {"id": eid or None,
                                         "type": ev["type"],
                                         "channel": ev.get("channel") or
                                         None}}
            c["transitions"] += 1
            c["stage"] = target
            c["stage_at"] = c["entered"][self.stages[target]] = ts
            self.map["%s:entries" % self.stages[target]] += 1
            if frm is not None:
                self.map["%s>%s" % (frm, self.stages[target])] += 1
        stage = self.stages[c["stage"]]
        self.map["%s:a:%s" % (stage, ev["type"])] += 1
        if ev.get("channel"):
            self.map["%s:c:%s" % (stage, ev["channel"])] += 1

    def expected_hash(self, cid):
        c = self.customers[cid]
        h = {"at:" + s: iso(ts) for s, ts in c["entered"].items()}
        h.update({"stage": self.stages[c["stage"]],
                  "events": str(c["events"]),
                  "first_seen": iso(c["first_seen"]),
                  "last_seen": iso(c["last_seen"]),
                  "stage_at": iso(c["stage_at"]),
                  "last_channel": c["last_channel"]})
        return h

    def stage_counts(self):
        counts = {}
        for c in self.customers.values():
            s = self.stages[c["stage"]]
            counts[s] = counts.get(s, 0) + 1
        return counts


def compare_state(redis, fold, prefix="journey:"):
    """Mismatches between Redis and the fold, as readable lines."""
    problems = []
    for cid, c in fold.customers.items():
        want = fold.expected_hash(cid)
        if len(c["counts"]) <= ACTIONS_MAX:  # else some went to n_other
            want.update(("n:" + t, str(n)) for t, n in c["counts"].items())
        if len(c["channels"]) <= CHANNELS_MAX:
            want.update(("c:" + t, str(n)) for t, n in c["channels"].items())
        if c["segment"]:
            want["segment"] = c["segment"]
        got = redis.customer(cid, prefix)
        # past the cap, which types keep a field is journeyd's choice; what
        # README says holds whatever it chose: that many fields, each at
        # most the type's events, and with the rest they add up
        for pre, other, cap, counts in (
                ("n:", "n_other", ACTIONS_MAX, c["counts"]),
                ("c:", "c_other", CHANNELS_MAX, c["channels"])):
            kept = {k[len(pre):]: int(v) for k, v in got.items()
                    if k.startswith(pre)}
            if len(counts) <= cap:
                # each expected field is checked below: none more
                extra = sorted(set(kept) - set(counts))
                if extra or other in got:
                    problems.append("%s: fields %s%s not expected" % (
                        cid, pre, extra or other))
                continue
            if len(kept) != cap or any(n > counts.get(t, 0)
                                       for t, n in kept.items()) or \
                    sum(kept.values()) + int(got.get(other, 0)) != \
                    sum(counts.values()):
                problems.append("%s: %s fields %r and %s %r do not add up "
                                "to %r" % (cid, pre, kept, other,
                                           got.get(other), counts))
        if abs(float(got.get("value", 0)) - c["value"]) > \
                1e-9 * max(1.0, abs(c["value"])):
            problems.append("%s.value: redis %r, expected %r" %
                            (cid, got.get("value"), c["value"]))
        for k, v in want.items():
            if got.get(k) != v:
                problems.append("%s.%s: redis %r, expected %r" %
                                (cid, k, got.get(k), v))
        entries = redis.changes(cid, prefix)
        history = sum(1 for e in entries if e["kind"] == "stage")
        ids = [e["alert_id"] for e in entries if e["alert_id"]]
        if len(set(ids)) != len(ids):
            problems.append("%s: a change is in the history twice" % cid)
        if history != c["transitions"]:
            problems.append("%s: %d history entries, %d stage changes" %
                            (cid, history, c["transitions"]))
    keys = [k for k in redis.scan_keys(prefix + "{*") if k.endswith("}")]
    if len(keys) != len(fold.customers):
        problems.append("redis has %d customer keys, expected %d" %
                        (len(keys), len(fold.customers)))
    got = {k: int(v) for k, v in redis.hgetall(prefix + "map:other").items()
           if ":a:" in k or ":c:" in k or k.endswith(":entries") or
           (">" in k and not k.endswith(":ms"))}
    if got != dict(fold.map):
        diff = sorted(k for k in set(got) | set(fold.map)
                      if got.get(k) != fold.map.get(k))
        problems.append("map counters differ: %s" % ", ".join(
            "%s redis %r expected %r" % (k, got.get(k), fold.map.get(k))
            for k in diff[:8]))
    counts = {k: int(v) for k, v in redis.hgetall(prefix + "stages").items()
              if int(v) != 0}
    if counts != fold.stage_counts():
        problems.append("stage counts: redis %r, expected %r" %
                        (counts, fold.stage_counts()))
    return problems


def check_alerts(alerts, fold, exactly_once):
    """Mismatches between stage-change alerts and the fold's transitions.

    exactly_once: each transition alerted once; otherwise at least once,
    with every repeat carrying the same alert_id."""
    ids = {}
    count = {}
    for a in alerts:
        k = (a["customer_id"], a["from"], a["to"])
        ids.setdefault(k, set()).add(a["alert_id"])
        count[k] = count.get(k, 0) + 1
    want = set(fold.transitions)
    problems = []
    missing = want - set(ids)
    extra = set(ids) - want
    if missing:
        problems.append("alerts lost: %r" % sorted(missing)[:5])
    if extra:
        problems.append("alerts for no transition: %r" % sorted(extra)[:5])
    split = [k for k, v in ids.items() if len(v) != 1]
    if split:
        problems.append("a repeated alert changed its id: %r" % split[:5])
    # each says when, and by which event
    wrong = [(a, fold.triggers[k]) for a in alerts
             for k in [(a["customer_id"], a["from"], a["to"])]
             if k in fold.triggers and
             ({"at": a["at"], "event": a.get("event")} != fold.triggers[k]
              or a.get("source", {}).get("topic") != "touchpoints")]
    if wrong:
        problems.append("alerts that misstate their event: %r" % wrong[:3])
    if exactly_once:
        twice = [k for k, n in count.items() if n > 1]
        if twice:
            problems.append("alerted more than once: %r" % twice[:5])
    return problems


def check_outcome(st, fold, exactly_once):
    """Redis state equals the fold and the alert topic holds its stage
    changes (once each, or at least once with stable ids); returns the
    alerts. Fails with every mismatch found."""
    problems = compare_state(st.redis, fold)
    alerts = [json.loads(m["value"]) for m in st.consume("journey.stage-change")]
    problems += check_alerts(alerts, fold, exactly_once)
    assert not problems, "\n".join(problems[:20])
    return alerts
