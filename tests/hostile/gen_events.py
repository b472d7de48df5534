#!/usr/bin/env python3
"""gen_events.py: writes tests/hostile/events.txt, the hostile event corpus.

Each hostile (key, payload) pair below is followed by a GOOD event with a
unique customer id (good-NNN). Lines are ktool's produce format, KEY<TAB>VALUE,
with backslash, newline, TAB and NUL written as \\\\ \\n \\t \\0 so the exact
bytes survive ktool's decoding; every other byte (invalid UTF-8 included)
is written raw. Lines starting with '#' are comments the test skips.
Run it again after editing the list: python3 tests/hostile/gen_events.py
"""
import os

DEEP = 5000
GOOD_TYPES = ["ad_click", "product_view", "purchase", "login", "referral",
              "blog_read", "add_to_cart", "checkout", "renewal", "webinar"]


def ev(cid="h", typ="x", **more):
    """A JSON object text with customer_id and type first, then more."""
    parts = []
    if cid is not None:
        parts.append('"customer_id":"%s"' % cid)
    if typ is not None:
        parts.append('"type":"%s"' % typ)
    parts += ['"%s":%s' % (k, v) for k, v in more.items()]
    return "{" + ",".join(parts) + "}"


def f(field, raw, cid):
    """An otherwise good event whose field holds the raw JSON text."""
    return ev(cid, "x", **{field: raw}) if field != "type" else \
        '{"customer_id":"%s","type":%s}' % (cid, raw)


H = []  # (key, payload): str is UTF-8 encoded, bytes are raw
add = H.append

# -- invalid and truncated JSON ---------------------------------------------
for i, bad in enumerate([
        '{"customer_id":"h-json-0","type":"x"', '{"customer_id":"h-json-1","type":',
        '{"customer_id":"h-json-2" "type":"x"}', '{customer_id:"h-json-3",type:"x"}',
        "{'customer_id':'h-json-4','type':'x'}", '{"customer_id":"h-json-5","type":"x",}',
        'not json at all', '{"customer_id":"h-json-7","type":"x"}garbage',
        '{"customer_id":"h-json-8","type":"x"}{"customer_id":"h-json-8b","type":"x"}',
        ev("h-json-9", value="NaN"), ev("h-json-10", value="Infinity"),
        ev("h-json-11", value="-"), ev("h-json-12", value="01"),
        ev("h-json-13", value="1."), ev("h-json-14", value=".5"),
        ev("h-json-15", value="0x10"), '{"customer_id":"h-json-16",/*c*/"type":"x"}',
        '{"customer_id":"h-json-17","type":"a\nb"}',   # raw LF inside a string
        '{"customer_id":"h-json-18","type":"a\tb"}',   # raw TAB inside a string
        '\ufeff' + ev("h-json-19"),                    # byte order mark
        ev("h-json-20", "\\ud800"), ev("h-json-21", "\\udc00"),
        ev("h-json-22", "\\x41"), ev("h-json-23", "\\u12"),
        '{"customer_id":"h-json-24","ty', '{"customer_id":"h-json-25","type":"x","properties":{"a":[1,2',
        '{"customer_id":"h-json-26","type":"x\\', '{', '[', '"', '}', ']', ':', ',',
        '{"customer_id":"h-json-27","type":"x"}}', '{"customer_id"}',
        ev("h-json-28", value="1e400"), ev("h-json-29", value="-1e400"),
        ev("h-json-30", value="tru"), ev("h-json-31", value="nul"),
        '{"customer_id":"h-json-32","type":"x"}\r\n\r\n',   # trailing blanks: valid
        # a backslash then LF, CR or ESC: jansson quotes the raw byte in its
        # error text, so the dead-letter reason is not one line (known bug)
        '{"customer_id":"h-json-33","type":"\\\n"}',
        '{"customer_id":"h-json-34","type":"\\\r"}',
        '{"customer_id":"h-json-35","type":"\\\x1b[31mred"}',
        ]):
    add(("h-json-key-%d" % i, bad))

# -- deep nesting: > event.max_bytes in phase 1, parsed in phase 2 -----------
add(("h-deep-0", "[" * DEEP + "]" * DEEP))
add(("h-deep-1", '{"a":' * DEEP + "1" + "}" * DEEP))
add(("h-deep-2", ev("h-deep-2", properties='{"a":' * DEEP + "{}" + "}" * DEEP)))
add(("h-deep-3", ev("h-deep-3", properties="[" * DEEP + "]" * DEEP)))
add(("h-deep-4", "[" * 4000))                                # unterminated, < 4096
add(("h-deep-5", "[" * 2040 + "]" * 2040))                   # legal, not an object
add(("h-deep-6", ev("h-deep-6", properties='{"":' * 700 + "0" + "}" * 700)))  # ok
add(("h-deep-7", '{"a":' * 800))                             # unterminated objects

# -- invalid UTF-8 (raw bytes), NUL bytes -----------------------------------
for i, raw in enumerate([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82",
                         b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\x80",
                         b"\xfe\xfe\xff\xff"]):
    add(("h-utf8-%d" % i, b'{"customer_id":"h-utf8-%d","type":"x%s"}' % (i, raw)))
add(("h-utf8-k", b'{"customer_id":"h-utf8-\xff","type":"x"}'))
add(("h-utf8-x", b'{"customer_id":"h-utf8-x","type":"x"}\xff'))
add((b"\xff\xfe", '{"type":"x"}'))                           # key as id: refused
add((b"\xff\xfe", ev("h-utf8-key-ignored")))                 # key unused: ok
add(("h-utf8-ok", ev("h-utf8-\u043a\u043b\u0438\u0435\u043d\u0442-\U0001F600")))
add(("h-nul-0", ev("h-nul-0") + "\0"))
add(("h-nul-1", '{"customer_id":"h-nul-1","type":"a\0b"}'))
add(("h-nul-2", "\0"))
add(("h-nul-3", ev("h-nul-3", "a\\u0000b")))
add(("h-nul-4", ev("h-nul-4\\u0000")))
add(("a\0b", '{"type":"x"}'))                                # key with NUL as id
add(("a\0b", ev("h-nul-key-ignored")))                       # key unused: ok
add(("h-nul-5", ev("h-nul-5", properties='{"a\\u0000b":1}')))
add(("h-nul-6", "\0" * 64))

# -- wrong types ------------------------------------------------------------
for field, raws in [
        ("customer_id", ["{}", "[]", "true", "false", "1.5", "1e3", '{"id":"x"}']),
        ("type", ["5", "true", "{}", "[]", "null", '""', "1.0",
                  '"red\\u009b31m"']),
        ("ts", ["true", "false", "{}", "[]", '""', '"yesterday"', '"2024-13-01"',
                '"2024-02-30"', '"2024-03-01T25:00:00Z"', '"2024-03-01T10:00:00+2400"',
                '"2024-03-01T10:00:00 +02:00"', '"2024-03-01T10:00:00.Z"',
                '"\uff12\uff10\uff12\uff14-03-01"', '"1709287200000"']),
        ("sentiment", ['"0.5"', "true", "[]", "{}", "1.0000001", "-1.5", "1e308",
                       "-1e308"]),
        ("value", ['"10"', "true", "[]", "{}", "1e16", "-1e16", "1e308"]),
        ("properties", ["[]", '"x"', "5", "true", "[{}]"]),
        ("channel", ["5", "{}", '""', '"%s"' % ("c" * 65), '"a\\u0001b"', "false"]),
        ("segment", ["5", "[]", '""', '"%s"' % ("s" * 65), '"a\\u007fb"']),
        ("event_id", ["5", "{}", '""', '"%s"' % ("e" * 129), '"a\\nb"'])]:
    for i, raw in enumerate(raws):
        cid = "h-%s-%d" % (field, i)
        if field == "customer_id":
            add((cid, '{"customer_id":%s,"type":"x"}' % raw))
        else:
            add((cid, f(field, raw, cid)))

# -- missing fields, nulls ---------------------------------------------------
add(("h-miss-0", "{}"))
add(("", "{}"))
add(("", '{"type":"x"}'))
add(("h-miss-keyonly", '{"type":"x"}'))                      # id from key: ok
add(("h-miss-2", '{"customer_id":"h-miss-2"}'))
add(("h-miss-nullid", '{"customer_id":null,"type":"x"}'))    # id from key: ok
add(("", '{"customer_id":null,"type":"x"}'))
add(("h-miss-4", '{"customer_id":"h-miss-4","type":null}'))
add(("h-miss-nots", ev("h-miss-nots", channel='"web"')))     # Kafka time: ok
add(("h-miss-nulls", ev("h-miss-nulls", ts="null", channel="null", segment="null",
                        event_id="null", sentiment="null", value="null",
                        properties="null")))                 # all null: ok

# -- numbers at and beyond the limits ----------------------------------------
for i, (field, raw) in enumerate([
        ("sentiment", "1e308"), ("ts", "1e300"), ("value", "1e400"),
        ("ts", "-1"), ("ts", "1000000000000001"), ("ts", "253402300800000"),
        ("ts", "-62135596800000"), ("ts", "9223372036854775807"),
        ("ts", "-9223372036854775808"), ("ts", "1e15"), ("value", "-1e15"),
        ("ts", "253402300799999"), ("ts", "0"), ("ts", "1.9"), ("sentiment", "-1"),
        ("sentiment", "1"), ("sentiment", "-0.0"), ("value", "1e-400"),
        ("ts", "99999999999999999999"), ("value", "1000000000000000.5")]):
    cid = "h-num-%d" % i
    add((cid, f(field, raw, cid)))
add(("h-num-id-max", '{"customer_id":9223372036854775807,"type":"x"}'))
add(("h-num-id-min", '{"customer_id":-9223372036854775808,"type":"x"}'))
add(("h-num-id-over", '{"customer_id":9223372036854775808,"type":"x"}'))
add(("h-num-id-0", '{"customer_id":-0,"type":"x"}'))

# -- timestamps --------------------------------------------------------------
for i, t in enumerate([
        "1969-12-31T23:59:59Z", "1969-12-31", "0000-01-01", "0001-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z", "+10000-01-01", "99999-12-31", "9999-12-31T23:59:59-01:00",
        "1970-01-01T00:30:00+01:00", "9999-12-31T23:59:60Z",
        "1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "9999-12-31",
        "2024-03-01T10:00:00.123456789Z", "2024-03-01 10:00", "2024-03-01T10:00:00+0200",
        "2024-02-29", "2023-02-29", "2024-03-01T10:00:00z", "2016-12-31T23:59:60Z"]):
    cid = "h-ts-%d" % i
    add((cid, ev(cid, ts='"%s"' % t)))

# -- customer ids ---------------------------------------------------------------
for i, cid in enumerate([
        "a{b", "{", "}", "{x}", "x}{y", "x}:stages", "h-sp\\nnl", "tab\\there",
        "cr\\rhere", "del\\u007f", "", "x" * 257, "\u00e9" * 128 + "x", "x" * 4000,
        # mostly accepted from here on
        "cust with spaces", " leading-space", "   ", "glob*?[a]", "stages", "offsets",
        "x:y:z", "\u00e9" * 128, "y" * 256, "c1\\u0085ctl", "ls\\u2028sep",
        "\\ud83d\\ude00-pair", "quote\\\"d", "back\\\\slash", "%s%n%x", "journey:{x"]):
    add(("h-id-%d" % i, ev(cid)))
add(("h-id-10k", ev("z" * 10240)))                           # 10 KB id in the field
add(("k" * 10240, '{"type":"x"}'))                           # 10 KB id as the key
add(("k" * 300, '{"type":"x"}'))
add(("{evil}", '{"type":"x"}'))
add(("key with spaces", '{"type":"x"}'))                     # id from key: ok
add(("cr\rkey", '{"type":"x"}'))
add(("nl\nkey", '{"type":"x"}'))

# -- duplicate keys -------------------------------------------------------------
add(("h-dup-0", '{"customer_id":"h-dup-0","type":"x","type":"y"}'))
add(("h-dup-1", '{"customer_id":"a","customer_id":"b","type":"x"}'))
add(("h-dup-2", ev("h-dup-2", properties='{"a":1,"a":2}')))
add(("h-dup-3", '{"customer_id":"h-dup-3","type":"x","zz":1,"zz":2}'))
add(("h-dup-4", '{"customer_id":"h-dup-4","type":"x","t\\u0079pe":"y"}'))
add(("h-dup-5", ev("h-dup-5", properties='{"a":{"b":1,"b":1}}')))

# -- not objects, empty ---------------------------------------------------------
for i, v in enumerate(["[]", '[{"customer_id":"h-arr","type":"x"}]', "", "null",
                       "true", "42", '"string"', "   ", "\r", "\\", "-0", "1e999"]):
    add(("h-notobj-%d" % i, v))
add(("", ""))                                                # no key, no payload

# -- unknown fields and other accepted oddities ----------------------------------
add(("h-ok-unknown", ev("h-ok-unknown", extra='{"deep":[1,2,3]}', __proto__="1")))
add(("h-ok-esc", ev("h-ok-esc", "\\u00e9v\\u00e9nement")))
add(("h-ok-type64", ev("h-ok-type64", "t" * 64)))
add(("h-ok-type65", ev("h-ok-type65", "t" * 65)))
add(("h-ok-eid128", ev("h-ok-eid128", event_id='"%s"' % ("e" * 128))))
add(("h-ok-braces", ev("h-ok-braces", "{x}", channel='"{web}"', segment='"}"')))
add(("h-ok-ws", ' \t\r\n{ "customer_id" : "h-ok-ws" , "type" : "x" } \n'))


def escape(b):
    return (b.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
            .replace(b"\t", b"\\t").replace(b"\0", b"\\0"))


def raw(s):
    return s if isinstance(s, bytes) else s.encode("utf-8")


def main():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "events.txt")
    out = [b"# events.txt: hostile touchpoint events, one per line, each followed",
           b"# by a good one; ktool produce format KEY<TAB>VALUE (\\n \\t \\\\ \\0",
           b"# escaped, other bytes raw). Generated by gen_events.py; read by",
           b"# tests/integration/test_hostile.py, which skips these '#' lines."]
    for i, (k, v) in enumerate(H):
        out.append(escape(raw(k)) + b"\t" + escape(raw(v)))
        g = "good-%03d" % i
        out.append(b'%s\t{"customer_id":"%s","type":"%s","channel":"web",'
                   b'"ts":"2024-03-%02dT%02d:%02d:00Z","sentiment":0.5,"value":%d}'
                   % (g.encode(), g.encode(), GOOD_TYPES[i % 10].encode(),
                      1 + i % 28, i % 24, i % 60, i))
    with open(path, "wb") as fp:
        fp.write(b"\n".join(out) + b"\n")
    print("wrote %d hostile + %d good events to %s" % (len(H), len(H), path))


if __name__ == "__main__":
    main()
