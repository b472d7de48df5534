"""demo.py: `make demo`. Starts redis-server, the mock-cluster broker and
journeyd, feeds a live synthetic stream of customer journeys, prints the
stage-change alerts as they arrive and the funnel read back from Redis,
then cleans up."""
import collections
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "integration"))
import harness  # noqa: E402

CUSTOMERS, EVENTS, CHUNK = 3000, 45000, 1500
SHOWN = 25


def follow_alerts(p, seen):
    for line in p.stdout:
        a = json.loads(json.loads(line)["value"])
        seen.append(a)
        if len(seen) <= SHOWN:
            print("  alert %s  %-10s %-13s -> %-13s via %s/%s" % (
                a["alert_id"][:8], a["customer_id"], a["from"] or "(new)",
                a["to"], a["event"]["type"], a["event"]["channel"] or "-"))
        elif len(seen) == SHOWN + 1:
            print("  ... (counting the rest)")


def bar(n, total, width=40):
    return "#" * max(1 if n else 0, round(width * n / total)) if total else ""


def main():
    build = harness.build_dir()
    with harness.Stack(build, "journeyd-demo") as st:
        print("redis-server on 127.0.0.1:%d, Kafka broker at %s" %
              (st.redis_port, st.brokers))
        jd = st.start_journeyd()
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 2026,
                           "-b", 2)
        seen = []
        ktool = subprocess.Popen([st.bin["ktool"], "consume", st.brokers,
                                  "journey.stage-change", "-f", "-t", "60000"],
                                 stdout=subprocess.PIPE, text=True)
        follower = threading.Thread(target=follow_alerts, args=(ktool, seen),
                                    daemon=True)
        follower.start()
        print("feeding %d touchpoints of %d customers...\n" %
              (len(lines), CUSTOMERS))
        start = time.monotonic()
        for i in range(0, len(lines), CHUNK):
            st.produce("touchpoints", lines[i:i + CHUNK])
        st.wait_applied(len(lines), [jd], timeout=300)
        took = time.monotonic() - start
        rc = st.stop_journeyd(jd)
        last = [l for l in st.journeyd_log(jd).splitlines() if "stopped" in l]
        sent = int(re.search(r"alerts (\d+)", last[-1]).group(1)) if last else 0
        harness.wait_for("%d alerts to arrive" % sent,
                         lambda: len(seen) >= sent, timeout=60)
        ktool.terminate()
        ktool.wait()
        follower.join()

        moves = collections.Counter((a["from"] or "(new)", a["to"])
                                    for a in seen)
        print("\n%d stage-change alerts in %.1f s; most common moves:" %
              (len(seen), took))
        for (f, t), n in moves.most_common(8):
            print("  %-13s -> %-13s %6d" % (f, t, n))

        stages = ["awareness", "consideration", "decision", "retention",
                  "loyalty"]
        counts = {k: int(v) for k, v in
                  st.redis.hgetall("journey:stages").items()}
        total = sum(counts.values())
        print("\njourney map (from redis-cli HGETALL journey:stages):")
        reached = total
        for s in stages:
            n = counts.get(s, 0)
            print("  %-13s %6d  %-40s reached by %5.1f%%" % (
                s, n, bar(n, total), 100.0 * reached / total))
            reached -= n
        dead = st.consume("journey.dead-letter")
        reasons = collections.Counter(m["headers"].get("reason", "?")
                                      .split(" at byte")[0] for m in dead)
        print("\ndead-lettered: %d %s" % (len(dead), dict(reasons)))
        sample = seen[-1]["customer_id"] if seen else None
        if sample:
            print("\nredis-cli HGETALL 'journey:{%s}':" % sample)
            for k, v in sorted(st.redis.hgetall("journey:{%s}" %
                                                sample).items()):
                print("  %-24s %s" % (k, v))
        print("\njourneyd exited %d: %s" % (rc, last[-1] if last else ""))
        return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
