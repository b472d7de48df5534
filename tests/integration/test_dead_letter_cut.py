"""test_dead_letter_cut.py: a refused event too large to be sent whole as
a dead letter is sent cut, and the stream goes on.

A producer may send journeyd an event of any size the broker takes (with
compression, far more than journeyd's producer may send). Such an event
is refused (event.max_bytes) and its dead letter would carry it whole:
librdkafka refuses to produce it, and journeyd used to stop there, and
again after every restart, since the event is consumed again each time.

1. A 1.2 MB event between two good ones: its dead letter comes with the
   first bytes of the payload, under journeyd's producer's
   message.max.bytes (librdkafka's 1,000,000), and a `truncated` header
   with the whole sizes (journeyd's, after the event's own `truncated`
   header, which must not pass for it); the good events after it are
   applied.
2. A refused event's dead letter keeps its headers (journeyd's `reason`,
   `source_timestamp`, the event's Kafka timestamp, and `source` come
   after them).
3. A refused event whose headers alone are too large to send (12 of 100
   KB): its dead letter keeps journeyd's headers only, and says how many
   bytes of the event's went.
4. A broker that refuses a dead letter as too large (the mock answers the
   Produce request with MESSAGE_TOO_LARGE): it is produced again cut to
   4 KB, headers included, instead of whole, which a real broker would
   refuse for ever. Cut twice (first to fit message.max.bytes with the
   event's headers, then to 4 KB without them), it says how many bytes
   of headers went.
"""
import json
import signal
import sys

import harness

MSG_SIZE_TOO_LARGE = 10  # Kafka's error code
PRODUCE = 0              # Produce's ApiKey
PRODUCER_MAX = 1000000   # librdkafka's message.max.bytes


def event(cid, etype, i):
    return {"customer_id": cid, "type": etype, "event_id": "%s-%d" % (cid, i),
            "ts": "2026-03-01T10:00:%02dZ" % i}


def dead_letter(st, key):
    found = [m for m in st.consume("journey.dead-letter") if m["key"] == key]
    assert len(found) == 1, "%d dead letters of %s" % (len(found), key)
    return found[0]


def check_cut(m, sent, room, dropped=""):
    headers = dict(m["headers"])
    assert headers.get("truncated") == "key=%d payload=%d%s" % (
        len(m["key"]), len(sent), dropped), headers
    assert "reason" in headers and "source" in headers, headers
    got = m["value"]
    assert 0 < len(got) < len(sent) and sent.startswith(got), len(got)
    assert len(got) + sum(len(k) + len(v) for k, v in headers.items()) <= \
        room, len(got)
    return len(got)


def main():
    build = harness.build_dir()
    with harness.Stack(build, "journeyd-deadcut") as st:
        jd = st.start_journeyd()
        big = json.dumps(dict(event("big", "page_view", 2),
                              pad="x" * 1200000))
        st.produce("touchpoints", ["a\t" + json.dumps(event("a", "ad_click",
                                                         1))])
        st.produce("touchpoints", ["big\t" + big],
                   headers=[("truncated", "no")])
        st.produce("touchpoints", ["b\t" + json.dumps(event("b", "ad_click",
                                                         3))])
        st.wait_applied(3, [jd])
        assert jd.poll() is None, "journeyd exited on an event of 1.2 MB"
        assert st.redis.customer("b")["events"] == "1", "b not applied"
        kept = check_cut(dead_letter(st, "big"), big, PRODUCER_MAX)
        print("1.2 MB event: dead letter of %d bytes, stream went on" % kept)

        # a dead letter keeps the original's headers and Kafka timestamp
        st.produce("touchpoints", ['tagged\t{"customer_id":"tagged"}'],
                   headers=[("trace-id", "abc123"), ("origin", "shop")])
        st.wait_applied(4, [jd])
        m = dead_letter(st, "tagged")
        sent = [i for i in st.consume("touchpoints") if i["key"] == "tagged"]
        assert len(sent) == 1, sent
        assert m["headers"] == dict(sent[0]["headers"], reason="no type",
                                    source_timestamp=str(
                                        sent[0]["timestamp"]),
                                    source="touchpoints/%d/%d" % (
                                        sent[0]["partition"],
                                        sent[0]["offset"])), m["headers"]

        # headers alone too large: only journeyd's are kept
        huge = [("h%02d" % i, "v" * 100000) for i in range(12)]
        st.produce("touchpoints", ['heavy\t{"customer_id":"heavy"}'],
                   headers=huge)
        st.wait_applied(5, [jd])
        m = dead_letter(st, "heavy")
        assert sorted(m["headers"]) == ["reason", "source",
                                        "source_timestamp", "truncated"], \
            sorted(m["headers"])
        dropped = int(m["headers"]["truncated"].split("headers=")[1])
        assert dropped >= 1200000, m["headers"]["truncated"]
        assert m["value"] == '{"customer_id":"heavy"}', m["value"]

        # the broker refuses the next Produce request: the dead letter's,
        # as nothing else is produced meanwhile (journeyd is stopped while
        # the event is produced, and starts with the error waiting)
        assert st.stop_journeyd(jd) == 0
        wide = '{"customer_id":"wide","type":"x","pad":"%s' % ("y" * 10000)
        st.produce("touchpoints", ["wide\t" + wide])
        assert st.broker_command("error %d 1 %d" % (
            PRODUCE, MSG_SIZE_TOO_LARGE)) == "ok"
        jd = st.start_journeyd()
        st.wait_applied(6, [jd])
        kept = check_cut(dead_letter(st, "wide"), wide, 4096)
        log = open(jd.log_path).read()
        assert "dead letter cut to" in log, log
        assert st.stop_journeyd(jd) == 0

        # cut twice: to fit message.max.bytes with the event's headers,
        # then by the broker's refusal to 4 KB, where they do not fit: the
        # header says how many bytes of them went (it kept the first
        # cut's sizes, without a word of the headers)
        twice = '{"customer_id":"twice","pad":"%s"}' % ("z" * 1200000)
        st.produce("touchpoints", ["twice\t" + twice],
                   headers=[("trace", "t" * 3000)])
        assert st.broker_command("error %d 1 %d" % (
            PRODUCE, MSG_SIZE_TOO_LARGE)) == "ok"
        jd = st.start_journeyd()
        st.wait_applied(7, [jd])
        m = dead_letter(st, "twice")
        assert sorted(m["headers"]) == ["reason", "source",
                                        "source_timestamp", "truncated"], \
            sorted(m["headers"])
        # what the producer counts a header: name, value and 16 bytes
        check_cut(m, twice, 4096, " headers=%d" % (5 + 3000 + 16))
        assert st.stop_journeyd(jd) == 0
        print("refused by the broker as too large: produced again cut to %d "
              "bytes; cut twice, the event's headers dropped and said" % kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
