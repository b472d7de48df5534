"""test_state_script.py: the state script's version check, against Redis.

The script that writes a batch (daemon/batch.c) checks each customer's
stored version with the state's own SET ... GET, so by the time it finds a
customer someone else wrote, it has written the customers before it. This
runs the script exactly as built into journeyd (read out of the binary)
on a real redis-server with batches made by hand, and checks that:
- a batch whose second customer is stale, or whose new customer exists
  already, or whose customer key holds a hash, answers with that customer
  and leaves every key as it was: states, lists of changes, sorted sets,
  counters and partition watermarks;
- any other error of a SET (here OOM) is answered as it is, and leaves
  every key as it was too;
- so does a key the rest of the batch writes that holds another type (a
  list of changes, the stage counts, a deadline index, the watermarks):
  the states are put back, the counters moved back, and the entries
  pushed to the lists of the customers before it popped; and a counter
  field that holds no integer: the counters before it moved back;
- a batch whose versions all hold writes all of it; a deadline index
  entry it keeps is put back if it is gone and left as it is if not;
- a batch runs only if the batch before it on the same writer connection
  (its chain) was done: one sent behind a refused batch, whose versions
  all hold, is refused too and writes nothing (nor moves the watermark
  past the refused batch's events), and so is one whose predecessor
  never ran; the chain key of a connection expires a day after its last
  write.
"""
import os
import sys

import harness

V1 = (1).to_bytes(8, "big")
V2 = (2).to_bytes(8, "big")


def script_text(build):
    """The script as journeyd sends it to SCRIPT LOAD."""
    with open(os.path.join(build, "journeyd"), "rb") as f:
        binary = f.read()
    start = binary.index(b"local prefix, slice = ARGV[1]")
    return binary[start:binary.index(b"\0", start)]


CHAINS = iter(range(1, 1000))


def batch(customers, counters=(), keep=(), chain=None, offset=41, clock=1000):
    """KEYS and ARGV of a batch: customers are (id, expected version bytes,
    new state bytes, [changes]); one partition watermark (offset) and its
    event clock (clock, "" for none); each
    customer's deadline index entry set, but those of keep (id, score)
    kept; no names. chain is the writer's (name, place); by default the
    first write of a writer of its own."""
    if chain is None:
        chain = ("writer-%d" % next(CHAINS), 1)
    keys = ["journey:offsets"]
    argv = ["journey:", chain[0], chain[1], 1, "touchpoints/0", offset,
            clock]
    for cid, expect, state, changes in customers:
        keys += ["journey:{%s}" % cid, "journey:{%s}:changes" % cid]
        argv += [expect, state, len(changes)] + list(changes)
    kept = dict(keep)
    for verb in ("set", "keep"):
        entries = [(1000 + i, cid) for i, (cid, _, _, _) in
                   enumerate(customers) if (cid in kept) == (verb == "keep")]
        argv += [1, "due:touchpoints/0", len(entries)]
        for score, cid in entries:
            argv += [kept.get(cid, score), cid]
    argv += [0]					# no removals
    argv += [len(counters)]
    for key, field, delta in counters:
        argv += [key, field, delta]
    argv += [0, 0, ""]				# no names
    return keys, argv


def snapshot(st):
    """Every key and what it holds."""
    out = {}
    for key in sorted(st.redis.scan_keys("*")):
        kind = st.redis("TYPE", key)
        if kind == "string":
            out[key] = st.redis("GET", key, raw=True)
        elif kind == "hash":
            out[key] = st.redis.hgetall(key)
        elif kind == "list":
            out[key] = st.redis("LRANGE", key, 0, -1)
        elif kind == "zset":
            out[key] = st.redis("ZRANGE", key, 0, -1, "WITHSCORES")
        else:
            raise AssertionError("unexpected key %s of type %s" % (key, kind))
    return out


def run(st, sha, keys, argv):
    return st.redis("EVALSHA", sha, len(keys), *(keys + argv), raw=True)


def main():
    build = harness.build_dir()
    with harness.Stack(build, "state-script") as st:
        sha = st.redis("SCRIPT", "LOAD", script_text(build))
        st.redis("SET", "journey:{a}", V1 + b"a's state")
        st.redis("SET", "journey:{b}", V1 + b"b's state")
        st.redis("RPUSH", "journey:{a}:changes", "stage\t\tawareness")
        st.redis("HSET", "journey:{h}", "stage", "awareness")
        st.redis("HSET", "journey:stages", "awareness", 3)
        before = snapshot(st)
        counters = [("stages", "awareness", 1)]

        # b was written by someone else since (version 2, not 1)
        for stale, entry in (
                (("b", V2, V2 + b"b, new", ["stage\tawareness\tdecision"]),
                 "journey:{b}"),
                # a new customer that someone else has created meanwhile
                (("b", b"", V1 + b"b, new", []), "journey:{b}"),
                # a key that holds no packed state at all
                (("h", V1, V2 + b"h, new", []), "journey:{h}")):
            keys, argv = batch([("a", V1, V2 + b"a, new", ["risk\tlow\thigh"]),
                                stale], counters)
            reply = run(st, sha, keys, argv)
            assert reply == [b"stale", entry.encode()], reply
            assert snapshot(st) == before, (stale, snapshot(st), before)

        # a key the rest of the batch writes holds another type (another
        # tool's, or a hand's): said, and every key left as it was, the
        # states put back and the entries pushed to the lists before it
        # popped (the script used to stop there, its states written)
        for key, value in (("journey:{b}:changes", "a string"),
                           ("journey:stages", "a string"),
                           ("journey:due:touchpoints/0", "a string"),
                           ("journey:offsets", "a string"),
                           ("journey:clocks", "a string")):
            saved = st.redis("DUMP", key, raw=True)
            st.redis("DEL", key)
            st.redis("SET", key, value)
            wrong = snapshot(st)
            keys, argv = batch([("c", b"", V1 + b"c's state",
                                 ["stage\t\tawareness"]),
                                ("a", V1, V2 + b"a, new", ["risk\tlow\thigh"]),
                                ("b", V1, V2 + b"b, new",
                                 ["stage\tawareness\tdecision"])], counters)
            try:
                run(st, sha, keys, argv)
                raise AssertionError("a batch over %s was not refused" % key)
            except RuntimeError as e:
                assert "WRONGTYPE" in str(e), e
            assert snapshot(st) == wrong, (key, snapshot(st), wrong)
            st.redis("DEL", key)
            if saved is not None:
                st.redis("RESTORE", key, 0, saved)
            assert snapshot(st) == before, (key, snapshot(st), before)

        # a counter field holding no integer refuses its HINCRBY: said,
        # the states put back and the counters moved before it moved
        # back (one it made deleted again); the script used to stop
        # there, its states and the counters before it written
        st.redis("HSET", "journey:stages", "zz", "not a number")
        wrong = snapshot(st)
        keys, argv = batch([("a", V1, V2 + b"a, new", ["risk\tlow\thigh"])],
                           [("stages", "awareness", 1), ("stages", "new", -2),
                            ("stages", "zz", 1)])
        try:
            run(st, sha, keys, argv)
            raise AssertionError("a batch over a field of text was not refused")
        except RuntimeError as e:
            assert "not an integer" in str(e), e
        assert snapshot(st) == wrong, (snapshot(st), wrong)
        st.redis("HDEL", "journey:stages", "zz")
        assert snapshot(st) == before, (snapshot(st), before)

        # Redis out of memory: said, and nothing written
        st.redis("CONFIG", "SET", "maxmemory", 1)
        keys, argv = batch([("a", V1, V2 + b"a, new", [])], counters)
        try:
            run(st, sha, keys, argv)
            raise AssertionError("a write over maxmemory was not refused")
        except RuntimeError as e:
            assert "OOM" in str(e), e
        st.redis("CONFIG", "SET", "maxmemory", 0)
        assert snapshot(st) == before, (snapshot(st), before)

        # every version holds: all of it is written; b's index entry is
        # kept, and put back since it is gone
        # a refused batch stops the batches sent behind it on its
        # connection: b stale at place 1, then a batch of a alone, whose
        # version holds, at place 2, and at place 3
        keys, argv = batch([("b", V2, V2 + b"b, new", [])], counters,
                           chain=("behind", 1), offset=40)
        assert run(st, sha, keys, argv) == [b"stale", b"journey:{b}"]
        for place in (2, 3):
            keys, argv = batch([("a", V1, V2 + b"a, new", ["risk\tlow\thigh"])],
                               counters, chain=("behind", place), offset=41)
            assert run(st, sha, keys, argv) == [b"chain", b"behind"]
            assert snapshot(st) == before, (snapshot(st), before)
        # nor may a write run whose predecessor never did
        keys, argv = batch([("a", V1, V2 + b"a, new", [])],
                           chain=("never", 2))
        assert run(st, sha, keys, argv) == [b"chain", b"never"]
        assert snapshot(st) == before, (snapshot(st), before)

        keys, argv = batch([("a", V1, V2 + b"a, new", ["risk\tlow\thigh"]),
                            ("b", V1, V2 + b"b, new", []),
                            ("c", b"", V1 + b"c's state", ["stage\t\tawareness"])],
                           counters, keep=[("b", 999)], chain=("ok", 1))
        assert isinstance(run(st, sha, keys, argv), int)
        assert st.redis("GET", "journey:writer:ok") == "1"
        assert 86390000 < st.redis("PTTL", "journey:writer:ok") <= 86400000
        assert st.redis("GET", "journey:{a}", raw=True) == V2 + b"a, new"
        assert st.redis("GET", "journey:{b}", raw=True) == V2 + b"b, new"
        assert st.redis("GET", "journey:{c}", raw=True) == V1 + b"c's state"
        assert st.redis("LRANGE", "journey:{a}:changes", 0, -1) == [
            "stage\t\tawareness", "risk\tlow\thigh"]
        assert st.redis("EXISTS", "journey:{b}:changes") == 0
        assert st.redis("ZRANGE", "journey:due:touchpoints/0", 0, -1,
                        "WITHSCORES") == ["b", "999", "a", "1000", "c", "1002"]
        # kept where it is: not moved to the score given
        # (the event clock does not go back either)
        keys, argv = batch([("b", V2, (3).to_bytes(8, "big") + b"b", [])],
                           keep=[("b", 5)], chain=("ok", 2), clock=999)
        assert isinstance(run(st, sha, keys, argv), int)
        assert st.redis("GET", "journey:writer:ok") == "2"
        # a place repeated (or skipped) is not the next one
        keys, argv = batch([("b", (3).to_bytes(8, "big"), b"x", [])],
                           chain=("ok", 2))
        assert run(st, sha, keys, argv) == [b"chain", b"ok"]
        assert st.redis("ZSCORE", "journey:due:touchpoints/0", "b") == "999"
        assert st.redis("HGET", "journey:stages", "awareness") == "4"
        assert st.redis("HGET", "journey:offsets", "touchpoints/0") == "41"
        assert st.redis("HGET", "journey:clocks", "touchpoints/0") == "1000"
        # with no clock (the wall's), none is written
        keys, argv = batch([("d", b"", V1 + b"d", [])], chain=("wall", 1),
                           offset=42, clock="")
        st.redis("DEL", "journey:clocks")
        assert isinstance(run(st, sha, keys, argv), int)
        assert st.redis("HGET", "journey:offsets", "touchpoints/0") == "42"
        assert st.redis("EXISTS", "journey:clocks") == 0
    print("a stale customer, a customer created meanwhile and a key of "
          "another type each left every key as it was; so did batches "
          "sent behind a refused one on its connection; a batch whose "
          "versions hold was written whole")


if __name__ == "__main__":
    sys.exit(main())
