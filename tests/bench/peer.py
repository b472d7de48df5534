"""peer.py: the benchmark's peer, the journey job as a user would write it
without journeyd, in Python with Debian's python3-confluent-kafka and
python3-redis. It owns nothing but its own consumer group and the
peer:{CUSTOMER} hashes it writes.

    peer.py --brokers B --topic T --redis IP:PORT --events N [--group G]

Batched consume (up to --batch messages a call), JSON parsing, the default
stage model as a type -> stage table (the furthest stage seen wins, no read
of the stored one), then per batch one pipelined round trip: an HSET per
customer (stage, last_seen, last_channel, last_type, segment) and an
HINCRBY of its event count, then an asynchronous offset commit. It prints
"peer events=N seconds=S rate=R", timed from the first batch to the last
write acknowledged, like nullpipe.
"""
import argparse
import json
import sys
import time

try:
    from confluent_kafka import Consumer
    import redis
except ImportError as e:  # the benchmark skips the peer then
    sys.stderr.write("peer.py: %s (apt-get install python3-confluent-kafka "
                     "python3-redis)\n" % e)
    sys.exit(77)

STAGES = ["awareness", "consideration", "decision", "retention", "loyalty"]
TYPE_STAGE = {}
for rank, types in enumerate([
        "ad_click search_visit social_post blog_read",
        "product_view pricing_view comparison demo_request trial_start "
        "add_to_cart",
        "checkout purchase contract_signed",
        "repeat_purchase renewal login support_resolved",
        "referral review_positive"]):
    for t in types.split():
        TYPE_STAGE[t] = rank


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--redis", required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--group", default="peer")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--idle", type=float, default=60.0)
    a = ap.parse_args()

    host, port = a.redis.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    c = Consumer({"bootstrap.servers": a.brokers, "group.id": a.group,
                  "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    c.subscribe([a.topic])
    done, t0, last = 0, None, time.monotonic()
    while done < a.events:
        msgs = c.consume(num_messages=a.batch, timeout=0.5)
        if not msgs:
            if time.monotonic() - last > a.idle:
                sys.stderr.write("peer.py: no progress after %d events\n" %
                                 done)
                return 1
            continue
        if t0 is None:
            t0 = time.monotonic()
        customers = {}
        for m in msgs:
            if m.error():
                continue
            done += 1
            try:
                ev = json.loads(m.value())
                cid = str(ev.get("customer_id") or m.key().decode())
                etype = ev["type"]
            except (ValueError, KeyError, AttributeError, TypeError):
                continue  # a user's job would dead-letter it; none here
            st = customers.get(cid)
            if st is None:
                st = customers[cid] = {"n": 0, "stage": -1}
            st["n"] += 1
            st["stage"] = max(st["stage"], TYPE_STAGE.get(etype, 0))
            st["last_seen"] = ev.get("ts", "")
            st["last_channel"] = ev.get("channel") or ""
            st["last_type"] = etype
            st["segment"] = ev.get("segment") or ""
        p = r.pipeline(transaction=False)
        for cid, st in customers.items():
            key = "peer:{%s}" % cid
            p.hset(key, mapping={
                "stage": STAGES[st["stage"]], "last_seen": st["last_seen"],
                "last_channel": st["last_channel"],
                "last_type": st["last_type"], "segment": st["segment"]})
            p.hincrby(key, "events", st["n"])
        p.execute()
        c.commit(asynchronous=True)
        last = time.monotonic()
    secs = time.monotonic() - t0
    print("peer events=%d seconds=%.3f rate=%.0f" %
          (done, secs, done / secs if secs > 0 else 0))
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
