"""test_names.py: the name table (journey:names) through the real stack.

- Names a batch writes out are numbered by the state script; the states
  written after that hold numbers, not names, and read back the same
  (harness, journeyctl).
- A name another instance numbered since this one read the table: the
  customer that numbers it is read again after the table's tail, and
  applied; nothing is dead-lettered, nothing reconnects. The same while
  Redis refuses to read the table (an ACL): journeyd reconnects until it
  can, and the customer is applied, not dead-lettered as unreadable.
- The table deleted under a running journeyd: its next write is refused
  and it reconnects; the customers whose states number names of the old
  table are not read with the new one's names (dead-lettered as
  unreadable, left as they were), new customers go on under a new table.
"""
import json
import subprocess
import sys

import harness

TS = 1767225600000
NAMES_HEAD = "journeyd names "


def events(cids, etype, channel, ts):
    return [dict(customer_id=c, type=etype, channel=channel, ts=ts + i)
            for i, c in enumerate(cids)]


def raw(st, cid):
    return st.redis("GET", "journey:{%s}" % cid, raw=True)


def journeyctl(st, config, *args):
    return subprocess.run([st.bin["journeyctl"], "-f", config] + list(args),
                          capture_output=True, text=True, timeout=60)


def dead_letters(st):
    return [(json.loads(m["value"])["customer_id"],
             m["headers"].get("reason"))
            for m in st.consume("journey.dead-letter")]


def main():
    topics = dict(harness.Stack.TOPICS)
    topics["elsewhere"] = 1
    with harness.Stack(harness.build_dir(), "names", topics=topics) as st:
        conf = st.write_config()
        jd = st.start_journeyd(conf)
        # the first customers write the names out; the script numbers them
        first = ["a%d" % i for i in range(20)]
        st.produce_events(events(first, "ad_click", "web", TS))
        st.wait_applied(len(first), [jd])
        table = st.redis("LRANGE", "journey:names", 0, -1)
        assert table[0].startswith(NAMES_HEAD), table
        assert len(set(table)) == len(table), table
        for name in ("awareness", "ad_click", "web"):
            assert name in table, (name, table)
        assert any(n.startswith("touchpoints/") for n in table), table
        # later customers' states number every name
        later = ["b%d" % i for i in range(20)]
        st.produce_events(events(later, "ad_click", "web", TS + 1000))
        st.wait_applied(len(first) + len(later), [jd])
        for cid in later:
            data = raw(st, cid)
            for name in (b"awareness", b"ad_click", b"web", b"touchpoints"):
                assert name not in data, (cid, name, data)
            c = st.redis.customer(cid)
            assert (c["stage"], c["n:ad_click"], c["last_channel"],
                    c["c:web"]) == ("awareness", "1", "web", "1"), c
        out = journeyctl(st, conf, "customer", "b3")
        assert out.returncode == 0 and "ad_click" in out.stdout and \
            "awareness" in out.stdout, out.stdout + out.stderr

        # another instance (its own topic and group) numbers a new name
        # and writes x1 with it; then x1's next event comes to the first
        other_conf = st.write_config(
            "group = other\ntopic.input = elsewhere\n", name="other.conf")
        other = st.start_journeyd(other_conf, "journeyd-other.log")
        st.produce_events([dict(customer_id="x0", type="zz_type",
                                channel="kiosk", ts=TS + 2000)],
                          topic="elsewhere")
        st.wait_applied(len(first) + len(later) + 1, [jd, other])
        harness.wait_for("the new names numbered", lambda: "zz_type" in
                         st.redis("LRANGE", "journey:names", 0, -1), 10)
        st.produce_events([dict(customer_id="x1", type="zz_type",
                                channel="kiosk", ts=TS + 3000)],
                          topic="elsewhere")
        st.wait_applied(len(first) + len(later) + 2, [jd, other])
        assert b"zz_type" not in raw(st, "x1") and \
            b"kiosk" not in raw(st, "x1"), raw(st, "x1")
        assert st.stop_journeyd(other) == 0, st.journeyd_log(other)[-2000:]
        st.produce_events([dict(customer_id="x1", type="ad_click",
                                channel="web", ts=TS + 4000)])
        st.wait_applied(len(first) + len(later) + 3, [jd])
        c = st.redis.customer("x1")
        assert (c["events"], c["n:zz_type"], c["c:kiosk"], c["last_channel"]
                ) == ("2", "1", "1", "web"), c
        assert dead_letters(st) == [], dead_letters(st)
        assert "connected again" not in st.journeyd_log(jd), \
            st.journeyd_log(jd)[-2000:]

        # the same while Redis refuses to read the table (an ACL; busy or
        # loading alike): Redis's trouble, not the customer's; journeyd
        # reconnects until it can read it, and y1 is applied, not
        # dead-lettered as unreadable
        applied = len(first) + len(later) + 3
        other = st.start_journeyd(other_conf, "journeyd-other-2.log")
        for i, cid in enumerate(("y0", "y1")):
            st.produce_events([dict(customer_id=cid, type="zz_two",
                                    channel="kiosk", ts=TS + 4100 + i)],
                              topic="elsewhere")
            applied += 1
            st.wait_applied(applied, [jd, other])
        assert b"zz_two" not in raw(st, "y1"), raw(st, "y1")
        assert st.stop_journeyd(other) == 0, st.journeyd_log(other)[-2000:]
        st.redis("ACL", "SETUSER", "default", "-lrange")
        try:
            st.produce_events([dict(customer_id="y1", type="ad_click",
                                    channel="web", ts=TS + 4200)])
            harness.wait_for("the table's read refused", lambda:
                             "cannot read the name table" in
                             st.journeyd_log(jd), 30)
        finally:
            st.redis("ACL", "SETUSER", "default", "+lrange")
        applied += 1
        st.wait_applied(applied, [jd])
        c = st.redis.customer("y1")
        assert (c["events"], c["n:zz_two"], c["last_channel"]) == (
            "2", "1", "web"), c
        assert dead_letters(st) == [], dead_letters(st)

        # the table deleted under it
        old_head = table[0]
        kept = raw(st, "b0")
        st.redis("DEL", "journey:names")
        fresh = ["c%d" % i for i in range(5)]
        st.produce_events(events(["b0"] + fresh, "purchase", "store",
                                 TS + 5000))
        st.wait_applied(applied + 1 + len(fresh), [jd])
        log = st.journeyd_log(jd)
        assert "the name table in Redis is not the one read" in log, \
            log[-2000:]
        assert dead_letters(st) == [
            ("b0", "stored state of this customer is unreadable")], \
            dead_letters(st)
        assert raw(st, "b0") == kept
        table = st.redis("LRANGE", "journey:names", 0, -1)
        assert table[0].startswith(NAMES_HEAD) and table[0] != old_head, \
            table
        for cid in fresh:
            c = st.redis.customer(cid)
            assert (c["stage"], c["n:purchase"]) == ("decision", "1"), c
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
        print("names numbered by the state script (%d in the table); later "
              "states hold numbers and read back; a name numbered by "
              "another instance is read after the table's tail; a deleted "
              "table: the write refused, reconnected, old states "
              "unreadable and left alone, a new table for the rest" %
              len(table))


if __name__ == "__main__":
    sys.exit(main())
