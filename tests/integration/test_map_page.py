"""test_map_page.py: the journey map page, as a browser shows it.

Replays the Olist marketing funnel (../shared/data; skipped when absent,
and skipped when Debian's chromium is not installed), with the acquisition
channel as touchpoint and segment. Then:
- /api/map equals the journey map hashes in Redis (entries, customers in
  each stage, at risk, at high risk and churned once the stream clock's
  deadlines are settled, conversions), and its opportunities are the
  stages the figures say; a segment and a window can be chosen, the
  window's entries those of its days;
- headless Chromium opens /map: the rendered DOM shows every stage, the
  counts Redis holds, the channels as touchpoints, and the highlighted
  opportunity; /map with a segment selected in the page shows that
  segment's counts; /customer/ID renders one lead's timeline, and
  /customer?id=.. the customer "..", whose id a browser cannot put in a
  path; an id with markup in it is shown as text, never as markup;
- screenshots of both pages are saved under build/ (map.png,
  customer.png).
"""
import collections
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse

import harness
import test_olist

CHROMIUM = shutil.which("chromium")


def browse(st, url, what, extra=()):
    """The DOM of url once its script has run, and a screenshot."""
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + os.path.join(st.tmp, what),
            "--window-size=1600,1100", "--virtual-time-budget=8000"]
    shot = os.path.join(st.build, what + ".png")
    subprocess.run(args + ["--screenshot=" + shot] + list(extra) + [url],
                   capture_output=True, timeout=120)
    r = subprocess.run(args + ["--dump-dom"] + list(extra) + [url],
                       capture_output=True, text=True, timeout=120)
    assert os.path.exists(shot), "no screenshot of " + url
    return r.stdout, shot


def card(dom, stage):
    m = re.search(r'<div class="stage[^"]*" data-stage="%s">(.*?)</div>'
                  r'(?=<div class="stage|</div>\s*<div id="opportunities")'
                  % re.escape(stage), dom, re.S)
    assert m, "no card for %s in the page" % stage
    return m.group(0)


def figure(card_html, key):
    m = re.search(r'data-figure="%s">([^<]*)<' % key, card_html)
    return m.group(1) if m else None


def main():
    path = harness.shared_data(test_olist.DATA)
    if path is None:
        return harness.SKIP
    if CHROMIUM is None:
        print("skipped: chromium is not installed")
        return harness.SKIP
    events = test_olist.funnel(path)
    with harness.Stack(harness.build_dir(), "mappage",
                       topics=test_olist.TOPICS) as st:
        jd = st.start_journeyd(st.write_config(test_olist.CONFIG, http=True))
        port = st.http_port
        st.produce_events(events)
        st.wait_applied(len(events), [jd], timeout=600)

        # the API against Redis, once the stream clock's deadlines are
        # settled (the gauges then hold still, some customers churned)
        def read_maps():
            return [st.redis.hgetall("journey:map:" + s) for s in
                    test_olist.CHANNELS]
        settled = []

        def still():
            maps = read_maps()
            time.sleep(0.5)
            settled[:] = [maps]
            return maps == read_maps() and any(
                int(m.get("awareness:churned", 0)) for m in maps)
        harness.wait_for("the map's gauges to settle", still, 120)
        maps = settled[0]
        status, body = st.http_get("/api/map")
        assert status == 200, (status, body)
        doc = json.loads(body)
        assert read_maps() == maps, "the map moved while it was read"
        stages = [s["name"] for s in doc["stages"]]
        assert stages == ["awareness", "consideration", "decision"], stages
        for s in doc["stages"]:
            for key in ("entries", "in", "at_risk", "high_risk", "churned"):
                want = sum(int(m.get("%s:%s" % (s["name"], key), 0))
                           for m in maps)
                assert s[key] == want, (s["name"], key, s[key], want)
        aware = doc["stages"][0]
        assert aware["next"]["decision"] == sum(
            int(m.get("awareness>decision", 0)) for m in maps)
        assert doc["opportunities"]["dropoff"]["stage"] == "awareness", doc
        status, body = st.http_get("/api/map?segment=email&window=30")
        email = json.loads(body)
        assert email["segment"] == "email" and email["window_days"] == 30
        assert email["stages"][0]["entries"] == int(
            st.redis.hgetall("journey:map:email")["awareness:entries"])
        # the window: entries of the 30 days up to the map's latest day
        days = collections.defaultdict(int)
        for field, v in st.redis.hgetall("journey:map:email").items():
            stage, sep, day = field.partition(":day:")
            if sep:
                days[stage, datetime.date.fromisoformat(day)] += int(v)
        last = max(day for _, day in days)
        for s in email["stages"]:
            want = sum(v for (stage, day), v in days.items() if stage ==
                       s["name"] and (last - day).days < 30)
            assert s["entries_window"] == want, (s, want)
        assert 0 < email["stages"][2]["entries_window"] < \
            email["stages"][2]["entries"], email["stages"][2]
        for bad, code in (("/api/map?segment=nope", 404),
                          ("/api/map?window=x", 400),
                          # digits only: strtol took a sign or spaces
                          ("/api/map?window=%201", 400),
                          ("/api/map?window=%2B1", 400),
                          ("/api/map?window=1%00x", 400),
                          ("/api/map?window=-0", 400),
                          ("/api/map?window=3661", 400),
                          # not NAME=VALUE: not the whole map instead
                          ("/api/map?segment=nope&debug", 400),
                          ("/api/customer/nobody", 404),
                          ("/nowhere", 404)):
            assert st.http_get(bad)[0] == code, bad

        # the page in a browser
        dom, map_png = browse(st, "http://127.0.0.1:%d/map" % port, "map")
        for s in doc["stages"]:
            c = card(dom, s["name"])
            assert figure(c, "in") == str(s["in"]), (s["name"], c[:500])
            assert figure(c, "entries") == str(s["entries"]), s["name"]
        c = card(dom, "awareness")
        for ch in ("organic_search", "paid_search", "social"):
            assert ">%s<" % ch in c.replace('<span class="fill" ' +
                                            'style="width: ', ""), ch
        assert re.search(r'<div class="stage opportunity" '
                         r'data-stage="awareness">', dom), \
            "the worst drop-off is not highlighted"
        assert 'data-opportunity="dropoff"' in c, c[:300]
        assert 'id="emotion-curve"' in dom
        assert '<div id="error"></div>' in dom, "the page reported an error"

        lead = events[0]["customer_id"]
        url = "http://127.0.0.1:%d/customer/%s" % (port, lead)
        dom, customer_png = browse(st, url, "customer")
        assert '<h2 id="customer-id">%s</h2>' % lead in dom, dom[-2000:]
        rows = re.findall(r'<tr class="kind-(\w+)">', dom)
        history = st.redis.changes(lead)
        assert len(rows) == len(history) and rows[0] == "stage", rows

        # markup in an id is text wherever it is shown
        evil = "<img src=x onerror=alert(1)>"
        st.produce_events([{"customer_id": evil, "type": "mql_first_contact",
                            "ts": events[-1]["ts"], "channel": "social"}])
        st.wait_applied(len(events) + 1, [jd])
        dom, _ = browse(st, "http://127.0.0.1:%d/customer/%s" %
                        (port, urllib.parse.quote(evil, safe="")), "evil")
        assert "&lt;img src=x onerror=alert(1)&gt;" in dom, dom[-1500:]
        assert "<img src" not in dom

        # ".." in a path is a dot segment to a browser: the query form
        st.produce_events([{"customer_id": "..", "type": "mql_first_contact",
                            "ts": events[-1]["ts"], "channel": "social"}])
        st.wait_applied(len(events) + 2, [jd])
        for q in ("..", "%2E%2E"):
            status, body = st.http_get("/api/customer?id=" + q)
            assert status == 200 and json.loads(body)["customer_id"] == "..", \
                (status, body)
        for bad in ("/api/customer?id=", "/api/customer?who=x",
                    "/api/customer?id=a%00b", "/api/customer"):
            assert st.http_get(bad)[0] == 400, bad
        dom, _ = browse(st, "http://127.0.0.1:%d/customer?id=.." % port,
                        "dots")
        assert '<h2 id="customer-id">..</h2>' in dom, dom[-1500:]

        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
        print("map page: %d stages rendered with Redis's counts, channels "
              "as touchpoints, drop-off at awareness highlighted; customer "
              "timeline of %d entries; markup in ids escaped; screenshots "
              "%s, %s" % (len(stages), len(rows), map_png, customer_png))


if __name__ == "__main__":
    sys.exit(main())
