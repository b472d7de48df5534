"""demo.py: `make demo`. Starts redis-server, the mock-cluster broker and
journeyd, feeds a live synthetic stream of customer journeys, prints the
stage-change and churn-risk alerts as they arrive, the funnel and the
journey map read back from Redis, then cleans up."""
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


def show(a, shown):
    """Prints the first few alerts of each type as they arrive."""
    shown[a["type"]] += 1
    if shown[a["type"]] > (SHOWN if a["type"] == "stage_change" else 6):
        return
    if a["type"] == "stage_change":
        print("  alert %s  %-10s %-13s -> %-13s via %s/%s" % (
            a["alert_id"][:8], a["customer_id"], a["from"] or "(new)",
            a["to"], a["event"]["type"], a["event"]["channel"] or "-"))
    elif a["type"] == "churn_risk":
        print("  alert %s  %-10s churn risk %-6s (%.2f) in %s: %s" % (
            a["alert_id"][:8], a["customer_id"], a["level"], a["score"],
            a["stage"], "; ".join(a["reasons"])))
    else:
        print("  alert %s  %-10s %s in %s at %s" % (
            a["alert_id"][:8], a["customer_id"], a["type"], a["stage"],
            a["at"][:10]))


def follow_alerts(p, seen, shown, lock):
    for line in p.stdout:
        a = json.loads(json.loads(line)["value"])
        with lock:
            seen.append(a)
            show(a, shown)


def bar(n, total, width=40):
    return "#" * max(1 if n else 0, round(width * n / total)) if total else ""


def main():
    build = harness.build_dir()
    with harness.Stack(build, "journeyd-demo") as st:
        print("redis-server on 127.0.0.1:%d, Kafka broker at %s" %
              (st.redis_port, st.brokers))
        config = st.write_config()
        jd = st.start_journeyd(config)
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 2026,
                           "-b", 2)
        seen, shown, lock = [], collections.Counter(), threading.Lock()
        followers = []
        for topic in ("journey.stage-change", "journey.churn-risk"):
            ktool = subprocess.Popen([st.bin["ktool"], "consume", st.brokers,
                                      topic, "-f", "-t", "60000"],
                                     stdout=subprocess.PIPE, text=True)
            t = threading.Thread(target=follow_alerts,
                                 args=(ktool, seen, shown, lock), daemon=True)
            t.start()
            followers.append((ktool, t))
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
        for ktool, t in followers:
            ktool.terminate()
            ktool.wait()
            t.join()

        moves = collections.Counter((a["from"] or "(new)", a["to"])
                                    for a in seen if a["type"] ==
                                    "stage_change")
        print("\n%d alerts in %.1f s: %s; most common moves:" %
              (len(seen), took, dict(shown)))
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
        m = st.redis.hgetall("journey:map:other")
        print("\nper stage (from redis-cli HGETALL journey:map:other):")
        print("  %-13s %6s %7s %7s %7s %9s  %-16s %s" % (
            "stage", "in", "entered", "at risk", "churned", "sentiment",
            "top action", "top pain point"))
        for s in stages:
            def top(kind):
                pre = "%s:%s:" % (s, kind)
                c = {k[len(pre):]: int(v) for k, v in m.items()
                     if k.startswith(pre)}
                return max(c, key=c.get) if c else "-"
            n = int(m.get(s + ":sent_n", 0))
            print("  %-13s %6s %7s %7s %7s %9s  %-16s %s" % (
                s, m.get(s + ":in", 0), m.get(s + ":entries", 0),
                m.get(s + ":at_risk", 0), m.get(s + ":churned", 0),
                "%+.2f" % (int(m.get(s + ":sent_milli", 0)) / 1000.0 / n)
                if n else "-", top("a"), top("pain")))
        dead = st.consume("journey.dead-letter")
        reasons = collections.Counter(m["headers"].get("reason", "?")
                                      .split(" at byte")[0] for m in dead)
        print("\ndead-lettered: %d %s" % (len(dead), dict(reasons)))
        sample = seen[-1]["customer_id"] if seen else None
        if sample:
            print("\njourneyctl customer %s:" % sample)
            sys.stdout.flush()
            subprocess.run([st.bin["journeyctl"], "-f", config, "customer",
                            sample], timeout=30)
        print("\njourneyd exited %d: %s" % (rc, last[-1] if last else ""))
        return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
