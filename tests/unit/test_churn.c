/*
 * test_churn.c: the churn-risk score and its components, levels with
 * hysteresis, exact deadlines, the settling of deadlines (churned,
 * reactivated), the clock (a timer and a later event settle alike), the
 * journey map counters and the risk fields of the customer hash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "churn.h"
#include "customer.h"
#include "journey.h"
#include "map.h"

#define DAY	INT64_C(86400000)

static struct journey_model	model;
static struct churn_params	params;

static int
setup(void **state)
{
	struct journey_rule	r;
	char			err[JOURNEY_RULE_ERR_MAX];
	const char		*stages[] = { "awareness", "decision",
				    "retention" };
	const char		*rules[] = { "ad_click", "purchase",
				    "purchase >= 2" };

	(void)state;
	journey_model_init(&model);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(journey_model_add_stage(&model, stages[i]), i);
		assert_int_equal(journey_rule_parse(rules[i], &r, err), 0);
		r.stage = i;
		assert_int_equal(journey_model_add_rule(&model, &r), 0);
	}
	/* a refund takes the customer back to awareness */
	assert_int_equal(journey_rule_parse("refund", &r, err), 0);
	r.stage = 0;
	r.demote = 1;
	assert_int_equal(journey_model_add_rule(&model, &r), 0);
	assert_int_equal(journey_model_set_pain(&model, "complaint", 1), 0);
	assert_int_equal(journey_model_set_sentiment(&model, "complaint",
	    -0.8), 0);
	assert_int_equal(journey_model_add_segment(&model, "25-34"), 0);
	journey_model_finish(&model);
	churn_params_default(&params);
	return 0;
}

static void
test_score_components(void **state)
{
	struct churn_signals	s;
	struct churn_score	sc;
	char			reasons[CHURN_REASONS_MAX];

	(void)state;
	churn_signals_init(&s);
	churn_observe(&params, &s, 0, 1, 1, -0.6);
	/* two cadences of silence: half the inactivity weight */
	churn_score(&params, &s, 30 * DAY, 0, 60 * DAY, &sc);
	assert_float_equal(sc.component[CHURN_INACTIVITY], 0.5, 1e-12);
	assert_float_equal(sc.component[CHURN_PAIN], 1.0 / 3, 1e-12);
	assert_float_equal(sc.component[CHURN_SENTIMENT], 0.6, 1e-12);
	assert_float_equal(sc.component[CHURN_ENGAGEMENT], 0, 1e-12);
	assert_float_equal(sc.score, 0.5 * 0.5 + 0.25 / 3 + 0.15 * 0.6, 1e-12);
	churn_reasons(&sc, 0, reasons);
	assert_string_equal(reasons, "inactive 60d, cadence 30d; "
	    "1.0 pain points; sentiment -0.60");
	/* within a cadence there is no inactivity at all */
	churn_score(&params, &s, 30 * DAY, 0, 29 * DAY, &sc);
	assert_float_equal(sc.component[CHURN_INACTIVITY], 0, 1e-12);
	/* signals halve every half-life; a late event weighs its age */
	churn_observe(&params, &s, 30 * DAY, 0, 1, 0.4);
	assert_float_equal(s.pain, 0.5, 1e-12);
	assert_float_equal(s.engagement, 1.5, 1e-12);
	assert_float_equal(s.sentiment_ws / s.sentiment_w,
	    (0.5 * -0.6 + 0.4) / 1.5, 1e-12);
	churn_observe(&params, &s, 0, 1, 0, 0);
	assert_float_equal(s.pain, 1.0, 1e-12);
	assert_int_equal(s.at_ms, 30 * DAY);
	/* engagement is measured against its peak */
	churn_signals_init(&s);
	for (int i = 0; i < 4; i++)
		churn_observe(&params, &s, 0, 0, 0, 0);
	churn_observe(&params, &s, 60 * DAY, 0, 0, 0);
	churn_score(&params, &s, 30 * DAY, 60 * DAY, 60 * DAY, &sc);
	assert_float_equal(sc.component[CHURN_ENGAGEMENT], 1 - 2.0 / 4, 1e-12);
	churn_reasons(&sc, 0, reasons);
	assert_string_equal(reasons, "engagement down 50% from peak");
	/* churned within a cadence: the silence is its reason */
	churn_score(&params, &s, 30 * DAY, 60 * DAY, 80 * DAY, &sc);
	churn_reasons(&sc, 20 * DAY, reasons);
	assert_string_equal(reasons, "inactive 20d, churned after 20d; "
	    "engagement down 50% from peak");
	/* a year after a complaint, its traces are no reasons */
	churn_signals_init(&s);
	churn_observe(&params, &s, 0, 1, 1, -0.02);
	churn_score(&params, &s, 30 * DAY, 0, 10 * DAY, &sc);
	assert_true(sc.component[CHURN_SENTIMENT] > 0);
	churn_reasons(&sc, 0, reasons);
	assert_string_equal(reasons, "1.0 pain points");
	churn_observe(&params, &s, 400 * DAY, 0, 0, 0);
	churn_score(&params, &s, 30 * DAY, 400 * DAY, 410 * DAY, &sc);
	assert_true(sc.component[CHURN_PAIN] > 0);
	churn_reasons(&sc, 0, reasons);
	assert_null(strstr(reasons, "pain"));
}

static void
test_levels_hysteresis(void **state)
{
	(void)state;
	assert_int_equal(churn_level_for(&params, CHURN_LOW, 0.2), CHURN_LOW);
	assert_int_equal(churn_level_for(&params, CHURN_LOW, 0.3),
	    CHURN_MEDIUM);
	assert_int_equal(churn_level_for(&params, CHURN_LOW, 0.51), CHURN_HIGH);
	/* near a threshold a customer stays: no flapping */
	assert_int_equal(churn_level_for(&params, CHURN_MEDIUM, 0.25),
	    CHURN_MEDIUM);
	assert_int_equal(churn_level_for(&params, CHURN_MEDIUM, 0.21),
	    CHURN_MEDIUM);
	assert_int_equal(churn_level_for(&params, CHURN_MEDIUM, 0.19),
	    CHURN_LOW);
	assert_int_equal(churn_level_for(&params, CHURN_HIGH, 0.45),
	    CHURN_HIGH);
	assert_int_equal(churn_level_for(&params, CHURN_HIGH, 0.35),
	    CHURN_MEDIUM);
	assert_int_equal(churn_level_for(&params, CHURN_HIGH, 0.1), CHURN_LOW);
	assert_string_equal(churn_level_name(CHURN_HIGH), "high");
}

static void
test_deadlines_exact(void **state)
{
	struct churn_signals	s;
	struct churn_score	sc;
	int64_t			d;

	(void)state;
	churn_signals_init(&s);
	churn_observe(&params, &s, 0, 0, 0, 0);
	/* medium needs 0.3 / 0.5 of inactivity: 66 days at a 30-day cadence */
	d = churn_next_deadline(&params, &s, 30 * DAY, 0);
	assert_true(d >= 66 * DAY && d <= 66 * DAY + 1);
	churn_score(&params, &s, 30 * DAY, 0, d, &sc);
	assert_int_equal(churn_level_for(&params, CHURN_LOW, sc.score),
	    CHURN_MEDIUM);
	churn_score(&params, &s, 30 * DAY, 0, d - 2, &sc);
	assert_int_equal(churn_level_for(&params, CHURN_LOW, sc.score),
	    CHURN_LOW);
	/* high needs all of it: 90 days, which is also churn.after */
	s.level = CHURN_MEDIUM;
	assert_int_equal(churn_next_deadline(&params, &s, 30 * DAY, 0),
	    90 * DAY);
	/* pain brings the next level closer */
	churn_observe(&params, &s, 0, 1, 1, -1);
	assert_true(churn_next_deadline(&params, &s, 30 * DAY, 0) < 90 * DAY);
	/* churned customers have no deadline; without churn.after, only rises */
	s.churned_ms = 90 * DAY;
	assert_int_equal(churn_next_deadline(&params, &s, 30 * DAY, 0),
	    CHURN_NEVER);
	s.churned_ms = CHURN_NOT_CHURNED;
	s.level = CHURN_HIGH;
	params.after_ms = 0;
	assert_int_equal(churn_next_deadline(&params, &s, 30 * DAY, 0),
	    CHURN_NEVER);
	churn_params_default(&params);
}

/* An event of customer c-1, of type at ts, and nothing else. */
static void
event_init(struct event *ev, const char *type, int64_t ts)
{
	memset(ev, 0, sizeof(*ev));
	strcpy(ev->customer_id, "c-1");
	strcpy(ev->type, type);
	ev->ts_ms = ts;
}

static struct journey_result
apply(struct journey_state *s, const char *type, int64_t ts, int64_t offset)
{
	struct event		ev;
	struct journey_result	res;

	event_init(&ev, type, ts);
	strcpy(ev.channel, "web");
	strcpy(ev.segment, "25-34");
	assert_int_equal(journey_apply(&model, s, &ev, "touchpoints/1", offset,
	    &res), 0);
	return res;
}

static void
assert_change(const struct journey_change *c, enum journey_change_kind kind,
    int from, int to, int64_t at)
{
	assert_int_equal(c->kind, kind);
	assert_int_equal(c->from, from);
	assert_int_equal(c->to, to);
	assert_true(c->at_ms >= at && c->at_ms <= at + 1);
}

static void
test_settle_churn_reactivate(void **state)
{
	struct journey_state	s;
	struct journey_result	r;

	(void)state;
	journey_state_init(&s);
	apply(&s, "ad_click", 0, 1);
	assert_string_equal(s.home, "touchpoints/1");
	assert_true(journey_deadline(&model, &s) >= 66 * DAY);
	/* nothing is due before the deadline */
	journey_settle(&model, &s, 65 * DAY, &r);
	assert_int_equal(r.nchanges, 0);
	journey_settle(&model, &s, 100 * DAY, &r);
	assert_int_equal(r.nchanges, 3);
	assert_change(&r.change[0], JOURNEY_CHANGE_RISK, CHURN_LOW,
	    CHURN_MEDIUM, 66 * DAY);
	assert_change(&r.change[1], JOURNEY_CHANGE_RISK, CHURN_MEDIUM,
	    CHURN_HIGH, 90 * DAY);
	assert_change(&r.change[2], JOURNEY_CHANGE_CHURNED, 0, 0, 90 * DAY);
	assert_true(journey_change_alerts(&r.change[0]));
	assert_string_equal(r.change[1].reasons, "inactive 90d, cadence 30d");
	assert_int_equal(s.risk.churned_ms, 90 * DAY);
	assert_int_equal(journey_deadline(&model, &s), CHURN_NEVER);
	/* settled once: a second timer finds nothing */
	journey_settle(&model, &s, 200 * DAY, &r);
	assert_int_equal(r.nchanges, 0);
	/* coming back: reactivated, a stage change, and the risk falls */
	r = apply(&s, "purchase", 120 * DAY, 2);
	assert_int_equal(r.nchanges, 3);
	assert_change(&r.change[0], JOURNEY_CHANGE_STAGE, 0, 1, 120 * DAY);
	assert_change(&r.change[1], JOURNEY_CHANGE_REACTIVATED, 1, 1,
	    120 * DAY);
	assert_change(&r.change[2], JOURNEY_CHANGE_RISK, CHURN_HIGH, CHURN_LOW,
	    120 * DAY);
	assert_int_equal(r.change[1].deadline_ms, -1);
	/* a fall is history, not an alert */
	assert_false(journey_change_alerts(&r.change[2]));
	assert_int_equal(s.risk.churned_ms, CHURN_NOT_CHURNED);
	/* complaints raise the risk on the spot, with the event as cause */
	apply(&s, "complaint", 121 * DAY, 3);
	apply(&s, "complaint", 121 * DAY, 4);
	r = apply(&s, "complaint", 121 * DAY, 5);
	assert_int_equal(s.risk.level, CHURN_MEDIUM);
	assert_int_equal(r.nchanges, 1);
	assert_change(&r.change[0], JOURNEY_CHANGE_RISK, CHURN_LOW,
	    CHURN_MEDIUM, 121 * DAY);
	assert_int_equal(r.change[0].deadline_ms, -1);
	assert_non_null(strstr(r.change[0].reasons, "pain points"));
	assert_non_null(strstr(r.change[0].reasons, "sentiment -0.80"));
}

/* Replay equals live: a timer, or the next event, settles alike. */
static void
test_clock_timer_equals_event(void **state)
{
	struct journey_state	live, replay;
	struct journey_result	tick, r1, r2;
	int			n = 0;

	(void)state;
	journey_state_init(&live);
	journey_state_init(&replay);
	apply(&live, "ad_click", 0, 1);
	apply(&replay, "ad_click", 0, 1);
	/* live: the timer fires at 70 days, then the customer returns */
	journey_settle(&model, &live, 70 * DAY, &tick);
	assert_true(tick.nchanges >= 1);	/* or nothing is compared */
	r1 = apply(&live, "purchase", 95 * DAY, 2);
	/* replay: no timer ran in between; the event settles it all */
	r2 = apply(&replay, "purchase", 95 * DAY, 2);
	assert_int_equal(tick.nchanges + r1.nchanges, r2.nchanges);
	for (int i = 0; i < tick.nchanges; i++, n++) {
		assert_int_equal(tick.change[i].kind, r2.change[n].kind);
		assert_int_equal(tick.change[i].at_ms, r2.change[n].at_ms);
		assert_int_equal(tick.change[i].deadline_ms,
		    r2.change[n].deadline_ms);
	}
	for (int i = 0; i < r1.nchanges; i++, n++) {
		assert_int_equal(r1.change[i].kind, r2.change[n].kind);
		assert_int_equal(r1.change[i].to, r2.change[n].to);
		assert_int_equal(r1.change[i].at_ms, r2.change[n].at_ms);
	}
	assert_int_equal(live.risk.level, replay.risk.level);
	assert_int_equal(live.risk.churned_ms, replay.risk.churned_ms);
	assert_int_equal(journey_deadline(&model, &live),
	    journey_deadline(&model, &replay));
	/* stream time: latest event time minus the lateness */
	assert_int_equal(churn_clock_now(1, 999, 5000, 1000), 3999);
	assert_int_equal(churn_clock_now(1, 999, -1, 1000), -1);
	assert_int_equal(churn_clock_now(0, 999, 5000, 1000), 999);
}

static const struct map_delta *
find_delta(const struct map_delta *d, int n, const char *field)
{
	for (int i = 0; i < n; i++)
		if (strcmp(d[i].field, field) == 0)
			return &d[i];
	return NULL;
}

static void
test_map_deltas(void **state)
{
	struct journey_state	s;
	struct journey_result	r;
	struct map_delta	d[MAP_DELTAS_MAX];
	struct event		ev;
	int			n;

	(void)state;
	journey_state_init(&s);
	apply(&s, "ad_click", 0, 1);
	event_init(&ev, "purchase", 2 * DAY);
	strcpy(ev.channel, "store");
	ev.has_sentiment = 1;
	ev.sentiment = 0.25;
	journey_apply(&model, &s, &ev, "touchpoints/1", 2, &r);
	n = map_deltas(&model, &s, &ev, &r, d);
	assert_non_null(find_delta(d, n, "decision:entries"));
	assert_int_equal(find_delta(d, n, "decision:day:1970-01-03")->delta, 1);
	assert_int_equal(find_delta(d, n, "awareness>decision")->delta, 1);
	assert_int_equal(find_delta(d, n, "awareness>decision:ms")->delta,
	    2 * DAY);
	/* two days: [2048, 4096) minutes */
	assert_int_equal(find_delta(d, n, "awareness:left:12")->delta, 1);
	assert_int_equal(map_time_bucket(59999), 0);
	assert_int_equal(map_time_bucket(60000), 1);
	assert_int_equal(map_time_bucket(2 * DAY), 12);
	assert_true(map_bucket_ms(12) > 2 * DAY);
	assert_int_equal(find_delta(d, n, "decision:a:purchase")->delta, 1);
	assert_int_equal(find_delta(d, n, "decision:c:store")->delta, 1);
	assert_int_equal(find_delta(d, n, "decision:sent_milli")->delta, 250);
	assert_int_equal(find_delta(d, n, "decision:sent_n")->delta, 1);
	assert_null(find_delta(d, n, "decision:pain:purchase"));
	/* the customer's segment is one the config names */
	assert_string_equal(d[0].segment, "25-34");
	strcpy(ev.type, "complaint");
	ev.has_sentiment = 0;
	ev.ts_ms = 3 * DAY;
	journey_apply(&model, &s, &ev, "touchpoints/1", 3, &r);
	n = map_deltas(&model, &s, &ev, &r, d);
	assert_int_equal(find_delta(d, n, "decision:pain:complaint")->delta,
	    1);
	assert_int_equal(find_delta(d, n, "decision:sent_milli")->delta, -800);
	/* a replay moves nothing */
	journey_apply(&model, &s, &ev, "touchpoints/1", 3, &r);
	assert_int_equal(map_deltas(&model, &s, &ev, &r, d), 0);
	/* a timer's churn counts in the customer's stage */
	journey_settle(&model, &s, 400 * DAY, &r);
	n = map_deltas(&model, &s, NULL, &r, d);
	assert_int_equal(find_delta(d, n, "decision:churns")->delta, 1);
	/* an event that came late, older than the entry into the stage it
	 * moves the customer on from, adds no time spent there (not less),
	 * and no customer who left it under a minute */
	journey_state_init(&s);
	apply(&s, "ad_click", 5 * DAY, 1);
	strcpy(ev.type, "purchase");
	ev.ts_ms = 2 * DAY;
	journey_apply(&model, &s, &ev, "touchpoints/1", 2, &r);
	n = map_deltas(&model, &s, &ev, &r, d);
	assert_int_equal(find_delta(d, n, "awareness>decision")->delta, 1);
	assert_null(find_delta(d, n, "awareness>decision:ms"));
	assert_null(find_delta(d, n, "awareness:left:0"));
	/* one in the very millisecond of the entry left it under a minute */
	journey_state_init(&s);
	apply(&s, "ad_click", 5 * DAY, 1);
	ev.ts_ms = 5 * DAY;
	journey_apply(&model, &s, &ev, "touchpoints/1", 2, &r);
	n = map_deltas(&model, &s, &ev, &r, d);
	assert_int_equal(find_delta(d, n, "awareness:left:0")->delta, 1);
	/* a customer of a stage the config no longer has sends an event id
	 * again: nothing moves, and no stage is looked up (UBSan: index -1) */
	s.stage = JOURNEY_NO_STAGE;
	strcpy(s.gone_stage, "advocacy");
	r.outcome = JOURNEY_DUPLICATE_ID;
	r.nchanges = 0;
	assert_int_equal(map_deltas(&model, &s, &ev, &r, d), 0);
}

/*
 * A customer churns in segment 25-34, then comes back in another: the
 * churn counts in 25-34 whether a timer settled it first or the event
 * that came back did (replay equals live for the map too).
 */
static void
test_map_deltas_silent_segment(void **state)
{
	struct journey_state	s, timer;
	struct journey_result	r;
	struct map_delta	d[MAP_DELTAS_MAX];
	struct event		ev;
	int			n;

	(void)state;
	journey_state_init(&s);
	apply(&s, "purchase", 0, 1);
	event_init(&ev, "login", 100 * DAY);
	strcpy(ev.segment, "55-64");
	timer = s;

	journey_apply(&model, &s, &ev, "touchpoints/1", 2, &r);
	n = map_deltas(&model, &s, &ev, &r, d);
	assert_string_equal(find_delta(d, n, "decision:churns")->segment,
	    "25-34");
	assert_string_equal(find_delta(d, n, "decision:a:login")->segment,
	    "other");

	/* the timer's way, which the event's must equal */
	journey_settle(&model, &timer, 95 * DAY, &r);
	n = map_deltas(&model, &timer, NULL, &r, d);
	assert_string_equal(find_delta(d, n, "decision:churns")->segment,
	    "25-34");
}

/* The deltas d[0..n) of a segment's field, summed into *sum. */
static void
sum_delta(const struct map_delta *d, int n, const char *segment,
    const char *field, int64_t *sum)
{
	for (int i = 0; i < n; i++)
		if (strcmp(d[i].segment, segment) == 0 &&
		    strcmp(d[i].field, field) == 0)
			*sum += d[i].delta;
}

/*
 * A customer who changes segment takes its entry into its stage along: a
 * segment's moves on from a stage are never more than its entries into it
 * (they were, by the customers who entered it in another segment). Only
 * moves on count in the time to move on: a demotion is no conversion.
 */
static void
test_map_deltas_segment_change(void **state)
{
	static const char *const	 segs[] = { "25-34", "other" };
	static const char *const	 fields[] = { "awareness:entries",
	    "awareness:day:1970-01-01", "decision:entries",
	    "decision:day:1970-01-03", "awareness>decision" };
	/* after each event: the sums of fields in 25-34, then in other */
	static const int64_t		 want[3][2][5] = {
		{ { 0, 0, 0, 0, 0 }, { 1, 1, 1, 1, 1 } },
		{ { 0, 0, 1, 1, 0 }, { 1, 1, 0, 0, 1 } },
		{ { 0, 0, 1, 1, 0 }, { 1, 1, 0, 0, 1 } },
	};
	static const char *const	 types[] = { "purchase", "login",
	    "login" };
	static const char *const	 seg_of[] = { "55-64", "25-34", "25-34" };
	int64_t				 sum[2][5] = { { 0 } };
	struct journey_state		 s;
	struct journey_result		 r;
	struct map_delta		 d[MAP_DELTAS_MAX];
	struct event			 ev;
	int				 n;

	(void)state;
	journey_state_init(&s);
	r = apply(&s, "ad_click", 0, 1);
	n = map_deltas(&model, &s, NULL, &r, d);
	for (int k = 0; k < 2; k++)
		for (int f = 0; f < 5; f++)
			sum_delta(d, n, segs[k], fields[f], &sum[k][f]);
	for (int e = 0; e < 3; e++) {
		event_init(&ev, types[e], (2 + e) * DAY);
		strcpy(ev.segment, seg_of[e]);
		journey_apply(&model, &s, &ev, "touchpoints/1", 2 + e, &r);
		n = map_deltas(&model, &s, &ev, &r, d);
		for (int k = 0; k < 2; k++)
			for (int f = 0; f < 5; f++) {
				sum_delta(d, n, segs[k], fields[f],
				    &sum[k][f]);
				if (sum[k][f] != want[e][k][f])
					fail_msg("event %d: %s %s = %lld", e,
					    segs[k], fields[f],
					    (long long)sum[k][f]);
			}
	}
	/* a refund 5 days into decision: back to awareness, the time
	 * spent in decision counted, but not as a move on */
	event_init(&ev, "refund", 7 * DAY);
	journey_apply(&model, &s, &ev, "touchpoints/1", 9, &r);
	assert_int_equal(r.to, 0);
	n = map_deltas(&model, &s, &ev, &r, d);
	assert_int_equal(find_delta(d, n, "decision>awareness:ms")->delta,
	    5 * DAY);
	for (int i = 0; i < n; i++)
		assert_null(strstr(d[i].field, ":left:"));

	/* a state stored before the map existed: its entry, counted
	 * nowhere, counts in the segment it is first given, and is taken
	 * from nowhere (its later moves then balance) */
	journey_state_init(&s);
	apply(&s, "ad_click", 0, 1);
	s.mseg[0] = '\0';
	event_init(&ev, "login", DAY);
	journey_apply(&model, &s, &ev, "touchpoints/1", 2, &r);
	n = map_deltas(&model, &s, &ev, &r, d);
	memset(sum, 0, sizeof(sum));
	for (int f = 0; f < 2; f++)
		sum_delta(d, n, "25-34", fields[f], &sum[0][f]);
	assert_int_equal(sum[0][0], 1);
	assert_int_equal(sum[0][1], 1);
	for (int i = 0; i < n; i++)
		assert_true(d[i].segment[0] != '\0');
}

/* s packed as Redis keeps it, and back */
static int
roundtrip(const struct journey_state *s, struct journey_state *back)
{
	unsigned char	buf[CUSTOMER_PACKED_MAX];

	return customer_unpack(&model, NULL, back, buf, customer_pack(&model, NULL, NULL, s, buf,
	    sizeof(buf)));
}

static void
test_risk_fields_roundtrip(void **state)
{
	struct journey_state	s, back;
	struct customer_fields	f;
	char			 reasons[CHURN_REASONS_MAX];
	char			 back_reasons[CHURN_REASONS_MAX];

	(void)state;
	journey_state_init(&s);
	apply(&s, "ad_click", 0, 1);
	apply(&s, "complaint", DAY / 3, 2);
	apply(&s, "complaint", DAY / 2, 3);
	customer_encode(&model, &s, &f);
	assert_string_equal(customer_field(&f, "mseg"), "25-34");
	assert_non_null(customer_field(&f, "due"));
	assert_int_equal(roundtrip(&s, &back), 0);
	/* the decayed sums read back exactly: no drift across restarts */
	assert_true(back.risk.sentiment_w == s.risk.sentiment_w);
	assert_true(back.risk.sentiment_ws == s.risk.sentiment_ws);
	assert_true(back.risk.pain == s.risk.pain);
	assert_true(back.risk.engagement == s.risk.engagement);
	assert_true(back.risk.engagement_peak == s.risk.engagement_peak);
	assert_int_equal(back.risk.at_ms, s.risk.at_ms);
	assert_int_equal(back.risk.level, s.risk.level);
	assert_int_equal(back.risk.churned_ms, CHURN_NOT_CHURNED);
	assert_int_equal(back.risk_at_ms, s.risk_at_ms);
	journey_risk_reasons(&model, &s, reasons);
	journey_risk_reasons(&model, &back, back_reasons);
	assert_string_equal(back_reasons, reasons);
	assert_string_equal(reasons, "2.0 pain points; sentiment -0.80");
	assert_string_equal(back.home, "touchpoints/1");
	s.version = 41;
	assert_int_equal(roundtrip(&s, &back), 0);
	assert_int_equal(back.version, 41);
	assert_int_equal(back.entered_ms[0], 0);
	assert_int_equal(back.stage, 0);
	assert_int_equal(back.entered_ms[0], s.entered_ms[0]);
	assert_int_equal(journey_deadline(&model, &back),
	    journey_deadline(&model, &s));
	s.risk.churned_ms = 5 * DAY;
	assert_int_equal(roundtrip(&s, &back), 0);
	assert_int_equal(back.risk.churned_ms, 5 * DAY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_score_components),
		cmocka_unit_test(test_levels_hysteresis),
		cmocka_unit_test(test_deadlines_exact),
		cmocka_unit_test(test_settle_churn_reactivate),
		cmocka_unit_test(test_clock_timer_equals_event),
		cmocka_unit_test(test_map_deltas),
		cmocka_unit_test(test_map_deltas_silent_segment),
		cmocka_unit_test(test_map_deltas_segment_change),
		cmocka_unit_test(test_risk_fields_roundtrip),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
