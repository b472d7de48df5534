/*
 * test_journey.c: stage rules, the fold of events into customer state,
 * its Redis hash form, and stage-change alerts.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alert.h"
#include "customer.h"
#include "journey.h"
#include "timestamp.h"

static struct journey_model	model;

static int
add_rule(struct journey_model *m, int stage, int demote, const char *text)
{
	struct journey_rule	r;
	char			err[JOURNEY_RULE_ERR_MAX];

	if (journey_rule_parse(text, &r, err) == -1)
		fail_msg("%s", err);
	r.stage = stage;
	r.demote = demote;
	if (journey_model_add_rule(m, &r) == -1)
		return -1;
	journey_model_finish(m);
	return 0;
}

static int
setup(void **state)
{
	const char	*stages[][4] = {
		{ "awareness", "ad_click", "blog_read", NULL },
		{ "consideration", "product_view", "add_to_cart", NULL },
		{ "decision", "purchase", "checkout.value >= 100", NULL },
		{ "retention", "repeat_purchase", "purchase >= 2", NULL },
		{ "loyalty", "referral", "nps.score >= 9", "purchase > 4" },
	};
	const char	*nested = "review.rating.stars >= 5";

	(void)state;
	journey_model_init(&model);
	for (size_t i = 0; i < 5; i++) {
		int	s = journey_model_add_stage(&model, stages[i][0]);

		assert_int_equal(s, (int)i);
		for (size_t k = 1; k < 4 && stages[i][k]; k++)
			assert_int_equal(add_rule(&model, s, 0, stages[i][k]),
			    0);
	}
	assert_int_equal(add_rule(&model, 4, 0, nested), 0);
	/* a cancellation takes loyal or retained customers back to decision */
	assert_int_equal(add_rule(&model, 2, 1, "subscription_cancelled"), 0);
	return 0;
}

static struct event
ev_of(const char *type, const char *channel, int64_t ts)
{
	struct event	ev;

	memset(&ev, 0, sizeof(ev));
	strcpy(ev.customer_id, "cust-1");
	strcpy(ev.type, type);
	strcpy(ev.channel, channel);
	ev.ts_ms = ts;
	return ev;
}

/* The event's properties: JSON text, as event_parse leaves them. */
static void
set_properties(struct event *ev, const char *json)
{
	ev->properties = json;
	ev->properties_len = strlen(json);
}

static struct journey_result
apply(struct journey_state *s, const char *type, const char *channel,
    int64_t ts, int64_t offset)
{
	struct event		ev = ev_of(type, channel, ts);
	struct journey_result	res;

	assert_int_equal(journey_apply(&model, s, &ev, "touchpoints/0", offset,
	    &res), 0);
	return res;
}

static void
test_model(void **state)
{
	(void)state;
	assert_int_equal(journey_model_stage_of(&model, "purchase"), 2);
	assert_int_equal(journey_model_stage_of(&model, "ad_click"), 0);
	assert_int_equal(journey_model_stage_of(&model, "nope"),
	    JOURNEY_NO_STAGE);
	assert_int_equal(journey_model_stage_index(&model, "retention"), 3);
	/* a type leads to one stage only; stage names are unique */
	assert_int_equal(add_rule(&model, 1, 0, "purchase"), -1);
	assert_int_equal(journey_model_add_stage(&model, "decision"), -1);
}

static void
test_forward_only_and_jumps(void **state)
{
	struct journey_state	s;
	struct journey_result	r;

	(void)state;
	journey_state_init(&s);
	r = apply(&s, "blog_read", "web", 100, 0);
	assert_int_equal(r.outcome, JOURNEY_TRANSITION);
	assert_int_equal(r.from, JOURNEY_NO_STAGE);
	assert_int_equal(r.to, 0);
	/* awareness -> decision is one transition */
	r = apply(&s, "purchase", "store", 200, 1);
	assert_int_equal(r.outcome, JOURNEY_TRANSITION);
	assert_int_equal(r.from, 0);
	assert_int_equal(r.to, 2);
	assert_int_equal(s.stage_at_ms, 200);
	/* an earlier stage's event never takes the customer back */
	r = apply(&s, "product_view", "web", 300, 2);
	assert_int_equal(r.outcome, JOURNEY_APPLIED);
	assert_int_equal(s.stage, 2);
	/* unknown types count but do not move */
	r = apply(&s, "mystery", "app", 400, 3);
	assert_int_equal(r.outcome, JOURNEY_APPLIED);
	assert_int_equal(s.events, 4);
	assert_string_equal(s.last_channel, "app");
}

static void
test_new_customer_unknown_type(void **state)
{
	struct journey_state	s;
	struct journey_result	r;

	(void)state;
	journey_state_init(&s);
	r = apply(&s, "login_unknown", "", 5, 0);
	assert_int_equal(r.outcome, JOURNEY_TRANSITION);
	assert_int_equal(r.to, 0);
	assert_int_equal(s.first_seen_ms, 5);
}

static void
test_replay_and_late_events(void **state)
{
	struct journey_state	s;
	struct journey_result	r;

	(void)state;
	journey_state_init(&s);
	apply(&s, "ad_click", "web", 1000, 10);
	apply(&s, "product_view", "email", 2000, 11);
	/* a replayed offset changes nothing */
	r = apply(&s, "purchase", "web", 3000, 11);
	assert_int_equal(r.outcome, JOURNEY_DUPLICATE);
	assert_int_equal(s.events, 2);
	assert_int_equal(s.stage, 1);
	/* a late event moves neither last_seen nor the last channel back */
	r = apply(&s, "ad_click", "social", 500, 12);
	assert_int_equal(r.outcome, JOURNEY_APPLIED);
	assert_int_equal(s.last_seen_ms, 2000);
	assert_int_equal(s.first_seen_ms, 500);
	assert_string_equal(s.last_channel, "email");
	assert_int_equal(s.events, 3);
	/* one of the same millisecond as the latest is as late: the later
	 * offset's channel is the last */
	apply(&s, "ad_click", "store", 2000, 13);
	assert_string_equal(s.last_channel, "store");
}

static void
test_sources_are_bounded(void **state)
{
	struct journey_state	s;
	struct event		ev = ev_of("ad_click", "web", 1);
	struct journey_result	r;
	char			src[32];

	(void)state;
	journey_state_init(&s);
	for (int p = 0; p < JOURNEY_SOURCES_MAX + 3; p++) {
		snprintf(src, sizeof(src), "t/%d", p);
		journey_apply(&model, &s, &ev, src, 100 + p, &r);
		assert_int_not_equal(r.outcome, JOURNEY_DUPLICATE);
	}
	assert_int_equal(s.nsources, JOURNEY_SOURCES_MAX);
	/* the most recent partitions are still remembered */
	snprintf(src, sizeof(src), "t/%d", JOURNEY_SOURCES_MAX + 2);
	journey_apply(&model, &s, &ev, src, 100 + JOURNEY_SOURCES_MAX + 2, &r);
	assert_int_equal(r.outcome, JOURNEY_DUPLICATE);
	/*
	 * the least lately used makes room, whatever its offset: here the
	 * one of the largest offset, used first, not the partition just
	 * used whose offset is smallest
	 */
	journey_state_init(&s);
	journey_apply(&model, &s, &ev, "a/0", 900, &r);
	for (int p = 1; p < JOURNEY_SOURCES_MAX; p++) {
		snprintf(src, sizeof(src), "t/%d", p);
		journey_apply(&model, &s, &ev, src, 500 + p, &r);
	}
	journey_apply(&model, &s, &ev, "t/1", 2, &r);
	assert_int_equal(r.outcome, JOURNEY_DUPLICATE);
	journey_apply(&model, &s, &ev, "b/0", 1, &r);
	journey_apply(&model, &s, &ev, "t/1", 2, &r);
	assert_int_equal(r.outcome, JOURNEY_DUPLICATE);
	journey_apply(&model, &s, &ev, "a/0", 900, &r);
	assert_int_not_equal(r.outcome, JOURNEY_DUPLICATE);
}

static struct journey_result
apply_ev(struct journey_state *s, struct event *ev, int64_t offset)
{
	struct journey_result	res;

	assert_int_equal(journey_apply(&model, s, ev, "touchpoints/0", offset,
	    &res), 0);
	return res;
}

static void
test_count_rules(void **state)
{
	struct journey_state	s;
	struct journey_result	r;
	int64_t			off = 0;

	(void)state;
	journey_state_init(&s);
	r = apply(&s, "purchase", "web", 1, off++);
	assert_int_equal(r.to, 2);
	/* the second purchase: "purchase >= 2" -> retention */
	r = apply(&s, "purchase", "web", 2, off++);
	assert_int_equal(r.outcome, JOURNEY_TRANSITION);
	assert_int_equal(r.from, 2);
	assert_int_equal(r.to, 3);
	apply(&s, "purchase", "web", 3, off++);
	r = apply(&s, "purchase", "web", 4, off++);
	assert_int_equal(r.outcome, JOURNEY_APPLIED);
	/* "purchase > 4": the fifth */
	r = apply(&s, "purchase", "web", 5, off++);
	assert_int_equal(r.to, 4);
	assert_int_equal(s.action[0].count, 5);
}

static void
test_property_rules(void **state)
{
	struct journey_state	s;
	struct event		ev = ev_of("nps", "email", 10);
	struct journey_result	r;

	(void)state;
	journey_state_init(&s);
	apply(&s, "purchase", "web", 1, 0);
	set_properties(&ev, "{\"x\":{\"score\":10}}");
	r = apply_ev(&s, &ev, 1);	/* no "score" at the top: no move */
	assert_int_equal(r.outcome, JOURNEY_APPLIED);
	set_properties(&ev, "{\"score\":8}");
	r = apply_ev(&s, &ev, 2);
	assert_int_equal(r.outcome, JOURNEY_APPLIED);
	set_properties(&ev, "{\"score\":\"9\"}");	/* not a number */
	r = apply_ev(&s, &ev, 3);
	assert_int_equal(r.outcome, JOURNEY_APPLIED);
	set_properties(&ev, "{\"sc\\u006fre\":9.0}");
	r = apply_ev(&s, &ev, 4);
	assert_int_equal(r.outcome, JOURNEY_TRANSITION);
	assert_int_equal(r.to, 4);
	/* a dotted path goes down nested objects, and only objects */
	journey_state_init(&s);
	apply(&s, "purchase", "web", 1, 0);
	ev = ev_of("review", "web", 10);
	set_properties(&ev, "{\"rating\":5}");
	assert_int_equal(apply_ev(&s, &ev, 1).outcome, JOURNEY_APPLIED);
	set_properties(&ev, "{\"rating\":{\"stars\":4}}");
	assert_int_equal(apply_ev(&s, &ev, 2).outcome, JOURNEY_APPLIED);
	set_properties(&ev, "{\"rating\":[{\"stars\":5}]}");
	assert_int_equal(apply_ev(&s, &ev, 3).outcome, JOURNEY_APPLIED);
	set_properties(&ev, "{\"a\":1,\"rating\":{\"n\":null,\"stars\":5}}");
	r = apply_ev(&s, &ev, 4);
	assert_int_equal(r.outcome, JOURNEY_TRANSITION);
	assert_int_equal(r.to, 4);
	/* top-level value: a big checkout is a decision */
	journey_state_init(&s);
	ev = ev_of("checkout", "web", 20);
	ev.has_value = 1;
	ev.value = 99.5;
	r = apply_ev(&s, &ev, 4);
	assert_int_equal(r.to, 0);
	ev.value = 100;
	r = apply_ev(&s, &ev, 5);
	assert_int_equal(r.to, 2);
}

static void
test_demotion(void **state)
{
	struct journey_state	s;
	struct journey_result	r;

	(void)state;
	journey_state_init(&s);
	apply(&s, "referral", "web", 1, 0);
	assert_int_equal(s.stage, 4);
	r = apply(&s, "subscription_cancelled", "app", 2, 1);
	assert_int_equal(r.outcome, JOURNEY_TRANSITION);
	assert_int_equal(r.from, 4);
	assert_int_equal(r.to, 2);
	assert_int_equal(s.stage_at_ms, 2);
	/* a demotion never lifts anyone: from awareness it does nothing */
	journey_state_init(&s);
	apply(&s, "ad_click", "web", 1, 0);
	r = apply(&s, "subscription_cancelled", "app", 2, 1);
	assert_int_equal(r.outcome, JOURNEY_APPLIED);
	assert_int_equal(s.stage, 0);
}

/* A model of stages a, b, c and the rules given, each "stage:demote:rule". */
static void
small_model(struct journey_model *m, const char *const *rules, size_t n)
{
	journey_model_init(m);
	assert_int_equal(journey_model_add_stage(m, "a"), 0);
	assert_int_equal(journey_model_add_stage(m, "b"), 1);
	assert_int_equal(journey_model_add_stage(m, "c"), 2);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(add_rule(m, rules[i][0] - '0',
		    rules[i][2] - '0', rules[i] + 4), 0);
}

/* Each comparison at its boundary, on a number of the event and a count. */
static void
test_rule_operators(void **state)
{
	static struct journey_model	m;
	static const struct {
		const char	*rule, *score;
		int		 holds;
	} cases[] = {
		{ "nps.score >= 9", "9", 1 }, { "nps.score >= 9", "8.5", 0 },
		{ "nps.score > 9", "9", 0 }, { "nps.score > 9", "9.5", 1 },
		{ "nps.score <= 3", "3", 1 }, { "nps.score <= 3", "3.5", 0 },
		{ "nps.score < 3", "3", 0 }, { "nps.score < 3", "2.5", 1 },
		{ "nps.score = 5", "5", 1 }, { "nps.score = 5", "4.5", 0 },
		{ "nps.score = 5", "5.5", 0 },
	};
	const char		*rule[1];
	char			 text[64], props[64];
	struct journey_state	 s;
	struct journey_result	 r;
	struct event		 ev;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "1:0:%s", cases[i].rule);
		rule[0] = text;
		small_model(&m, rule, 1);
		snprintf(props, sizeof(props), "{\"score\":%s}",
		    cases[i].score);
		ev = ev_of("nps", "email", 10);
		set_properties(&ev, props);
		journey_state_init(&s);
		assert_int_equal(journey_apply(&m, &s, &ev, "touchpoints/0", 0,
		    &r), 0);
		if (s.stage != (cases[i].holds ? 1 : 0))
			fail_msg("%s with score %s: stage %d", cases[i].rule,
			    cases[i].score, s.stage);
	}
	/* a count: "purchase = 2" holds at the second purchase, not the first */
	rule[0] = "2:0:purchase = 2";
	small_model(&m, rule, 1);
	journey_state_init(&s);
	for (int64_t n = 1; n <= 3; n++) {
		ev = ev_of("purchase", "web", n);
		assert_int_equal(journey_apply(&m, &s, &ev, "touchpoints/0",
		    n, &r), 0);
		assert_int_equal(s.stage, n >= 2 ? 2 : 0);
		assert_int_equal(r.outcome, n <= 2 ? JOURNEY_TRANSITION :
		    JOURNEY_APPLIED);
	}
}

/* Of several demotions that hold, the mildest. */
static void
test_mildest_demotion(void **state)
{
	static struct journey_model	m;
	static const char *const	rules[] = {
		"2:0:buy", "0:1:cancel", "1:1:cancel",
	};
	struct journey_state		s;
	struct journey_result		r;
	struct event			ev;

	(void)state;
	small_model(&m, rules, 3);
	journey_state_init(&s);
	ev = ev_of("buy", "web", 1);
	assert_int_equal(journey_apply(&m, &s, &ev, "touchpoints/0", 0, &r),
	    0);
	assert_int_equal(s.stage, 2);
	ev = ev_of("cancel", "web", 2);
	assert_int_equal(journey_apply(&m, &s, &ev, "touchpoints/0", 1, &r),
	    0);
	assert_int_equal(r.from, 2);
	assert_int_equal(r.to, 1);
	/* from b, the demotion to b does nothing; the one to a holds */
	ev = ev_of("cancel", "web", 3);
	assert_int_equal(journey_apply(&m, &s, &ev, "touchpoints/0", 2, &r),
	    0);
	assert_int_equal(r.to, 0);
}

static void
test_duplicate_event_ids(void **state)
{
	struct journey_state	s;
	struct event		ev = ev_of("ad_click", "web", 1);
	struct journey_result	r;

	(void)state;
	journey_state_init(&s);
	strcpy(ev.event_id, "e-1");
	apply_ev(&s, &ev, 0);
	/* the producer sent it twice: a new offset, the same id */
	r = apply_ev(&s, &ev, 1);
	assert_int_equal(r.outcome, JOURNEY_DUPLICATE_ID);
	assert_int_equal(s.events, 1);
	assert_int_equal(s.source[0].offset, 1);
	/* memory is bounded: the oldest id is forgotten */
	for (int i = 2; i < 2 + JOURNEY_IDS_MAX; i++) {
		snprintf(ev.event_id, sizeof(ev.event_id), "e-%d", i);
		assert_int_equal(apply_ev(&s, &ev, i).outcome,
		    JOURNEY_APPLIED);
	}
	assert_int_equal(s.nids, JOURNEY_IDS_MAX);
	strcpy(ev.event_id, "e-1");
	assert_int_equal(apply_ev(&s, &ev, 99).outcome, JOURNEY_APPLIED);
}

static void
test_action_counts_bounded(void **state)
{
	struct journey_state	s;
	char			type[32];
	int64_t			off = 0;

	(void)state;
	journey_state_init(&s);
	for (int i = 0; i < JOURNEY_ACTIONS_MAX + 3; i++) {
		snprintf(type, sizeof(type), "t%d", i);
		apply(&s, type, "web", i, off++);
	}
	assert_int_equal(s.nactions, JOURNEY_ACTIONS_MAX);
	assert_int_equal(s.other_actions, 3);
	/* a type a count rule needs still gets a slot, and counts on */
	apply(&s, "purchase", "web", 100, off++);
	apply(&s, "purchase", "web", 101, off++);
	assert_int_equal(s.other_actions, 4);
	assert_int_equal(s.stage, 3);	/* purchase >= 2 */
}

/* An entry of the list of changes: eight tab-separated fields, empty ones
 * included; anything else is not one. */
static void
test_customer_key(void **state)
{
	char	key[32];

	(void)state;
	assert_int_equal(customer_key(key, sizeof(key), "journey:", "c-1", ""),
	    13);
	assert_string_equal(key, "journey:{c-1}");
	assert_int_equal(customer_key(key, sizeof(key), "journey:", "c-1",
	    CUSTOMER_CHANGES_SUFFIX), 21);
	assert_string_equal(key, "journey:{c-1}:changes");
	/* one byte short of its NUL: refused, not cut */
	assert_int_equal(customer_key(key, 21, "journey:", "c-1",
	    CUSTOMER_CHANGES_SUFFIX), 0);
	assert_int_equal(customer_key(key, 22, "journey:", "c-1",
	    CUSTOMER_CHANGES_SUFFIX), 21);
}

static void
test_customer_change_split(void **state)
{
	const char	*entry = "stage\t\tawareness\t2026-01-07T19:50:06.345Z"
			    "\tsearch_visit\te-5\tb808\t";
	const char	*f[CUSTOMER_CHANGE_FIELDS];
	size_t		 n[CUSTOMER_CHANGE_FIELDS];

	(void)state;
	assert_int_equal(customer_change_split(entry, strlen(entry), f, n), 0);
	assert_int_equal(n[0], 5);
	assert_memory_equal(f[0], "stage", 5);
	assert_int_equal(n[1], 0);		/* from: first seen */
	assert_memory_equal(f[2], "awareness", 9);
	assert_memory_equal(f[6], "b808", 4);
	assert_int_equal(n[7], 0);		/* no detail */
	assert_string_equal(customer_change_field[6], "alert_id");
	/* seven fields, nine fields, one */
	assert_int_equal(customer_change_split("a\tb\tc\td\te\tf\tg", 13, f,
	    n), -1);
	assert_int_equal(customer_change_split("a\tb\tc\td\te\tf\tg\th\ti",
	    17, f, n), -1);
	assert_int_equal(customer_change_split("", 0, f, n), -1);
}

/* A state with a bit of everything, for the packed form's tests. */
static void
packed_test_state(struct journey_state *s)
{
	journey_state_init(s);
	apply(s, "ad_click", "web", INT64_C(1323435000000), 7);
	apply(s, "purchase", "store", INT64_C(1323435060000), 8);
	strcpy(s->segment, "25-34");
	s->value_total = 0.1 + 0.2;	/* must survive the packed form exactly */
	s->other_actions = 3;
	s->nids = 2;
	s->recent_id[0] = journey_id_hash("e-1");
	s->recent_id[1] = journey_id_hash("e-2");
	s->version = 0x0102030405060708;
}

static void
test_customer_pack_roundtrip(void **state)
{
	struct journey_state	s, back;
	struct customer_fields	f;
	unsigned char		buf[CUSTOMER_PACKED_MAX];
	size_t			len;

	(void)state;
	packed_test_state(&s);
	/* the readable form */
	customer_encode(&model, &s, &f);
	assert_string_equal(customer_field(&f, "stage_at"),
	    "2011-12-09T12:51:00.000Z");
	assert_string_equal(customer_field(&f, "n:purchase"), "1");
	assert_null(customer_field(&f, "churned"));
	/* the packed form opens with the version, big-endian */
	len = customer_pack(&model, NULL, NULL, &s, buf, sizeof(buf));
	assert_true(len > CUSTOMER_VERSION_LEN && len < 200);
	assert_memory_equal(buf, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	assert_int_equal(customer_unpack(&model, NULL, &back, buf, len), 0);
	assert_true(back.version == s.version);
	assert_int_equal(back.stage, 2);
	assert_int_equal(back.stage_at_ms, s.stage_at_ms);
	assert_int_equal(back.first_seen_ms, s.first_seen_ms);
	assert_int_equal(back.last_seen_ms, s.last_seen_ms);
	assert_int_equal(back.risk_at_ms, s.risk_at_ms);
	assert_memory_equal(back.entered_ms, s.entered_ms,
	    sizeof(s.entered_ms));
	assert_int_equal(back.events, 2);
	assert_string_equal(back.last_channel, "store");
	assert_int_equal(back.nsources, 1);
	assert_string_equal(back.source[0].name, "touchpoints/0");
	assert_int_equal(back.source[0].offset, 8);
	assert_int_equal(back.nactions, 2);
	assert_string_equal(back.action[1].type, "purchase");
	assert_int_equal(back.action[1].count, 1);
	assert_int_equal(back.other_actions, 3);
	assert_int_equal(back.nids, 2);
	assert_true(back.recent_id[1] == journey_id_hash("e-2"));
	assert_int_equal(back.nchannels, 2);
	assert_string_equal(back.channel[1].type, "store");
	assert_int_equal(back.channel[0].count, 1);
	assert_string_equal(back.segment, "25-34");
	assert_true(back.value_total == 0.1 + 0.2);
	assert_string_equal(back.home, s.home);
	/* what is not a packed state is refused, not guessed: cut short,
	 * one byte too many, another format */
	assert_int_equal(customer_unpack(&model, NULL, &back, buf, len - 1), -1);
	buf[len] = 0;
	assert_int_equal(customer_unpack(&model, NULL, &back, buf, len + 1), -1);
	buf[CUSTOMER_VERSION_LEN]++;
	assert_int_equal(customer_unpack(&model, NULL, &back, buf, len), -1);
	assert_int_equal(customer_unpack(&model, NULL, &back, "stage", 5), -1);
	/* the right format byte on garbage: overlong varints are refused */
	memset(buf, 0xff, 64);
	buf[CUSTOMER_VERSION_LEN] = CUSTOMER_FORMAT;
	assert_int_equal(customer_unpack(&model, NULL, &back, buf, 64), -1);
	/* too small a buffer is said, not overrun */
	assert_int_equal(customer_pack(&model, NULL, NULL, &s, buf, 20), 0);
}

/* The packed form of s unpacks, or not. */
static int
unpacks(const struct journey_state *s)
{
	struct journey_state	back;
	unsigned char		buf[CUSTOMER_PACKED_MAX];
	size_t			len;

	len = customer_pack(&model, NULL, NULL, s, buf, sizeof(buf));
	assert_true(len > 0);
	return customer_unpack(&model, NULL, &back, buf, len);
}

/*
 * A state that decodes but holds what journeyd never writes (damaged, or
 * another program's) is refused: times outside the years of events, sums
 * that are no number, a score outside [0, 1], an id's hash wider than
 * any, a name twice in a list.
 */
static void
test_customer_unpack_refuses_values(void **state)
{
	struct journey_state	s;

	(void)state;
	packed_test_state(&s);
	assert_int_equal(unpacks(&s), 0);
	s.risk.score = 1 + 1e-15;	/* rounding: still read */
	assert_int_equal(unpacks(&s), 0);
#define REFUSED(field, value) do {					\
		packed_test_state(&s);					\
		s.field = (value);					\
		assert_int_equal(unpacks(&s), -1);			\
	} while (0)
	REFUSED(risk.pain, NAN);
	REFUSED(risk.sentiment_ws, INFINITY);
	REFUSED(value_total, -INFINITY);
	REFUSED(risk.score, -1.79e308);
	REFUSED(risk.score, 1.5);
	REFUSED(last_seen_ms, INT64_MAX - 5);
	REFUSED(first_seen_ms, -1);
	REFUSED(stage_at_ms, TIMESTAMP_MAX_MS + 1);
	REFUSED(entered_ms[1], -3);
	REFUSED(risk.churned_ms, -2);
	REFUSED(indexed_ms, -5);
	/* an id's hash no event gives (the readable form would cut it) */
	REFUSED(recent_id[1], JOURNEY_ID_HASH_MASK + 1);
#undef REFUSED
	/* names no event or config gives: empty, not UTF-8, or holding a
	 * control character that would reach an operator's terminal */
#define REFUSED_NAME(field, value) do {					\
		packed_test_state(&s);					\
		strcpy(s.field, (value));				\
		assert_int_equal(unpacks(&s), -1);			\
	} while (0)
	REFUSED_NAME(channel[1].type, "st\033[2Jore");
	REFUSED_NAME(action[0].type, "");
	REFUSED_NAME(source[0].name, "");
	REFUSED_NAME(segment, "25\377");
	REFUSED_NAME(last_channel, "\177web");
	/* a name twice in a list: its readable field would be twice */
	REFUSED_NAME(action[1].type, "ad_click");
	REFUSED_NAME(channel[1].type, "web");
#undef REFUSED_NAME
}

/*
 * packed_test_state as format 1 (before names were numbers or references
 * and sums varints) packed it: stored customers keep their state across
 * the upgrade.
 */
static const unsigned char format1[] =
    "\x01\x02\x03\x04\x05\x06\x07\x08\x01\x08\x64\x65\x63\x69\x73\x69\x6f"
    "\x6e\x80\x83\xfc\xad\x84\x4d\xc0\xa9\x07\xc0\xa9\x07\xc0\xa9\x07\x02"
    "\x09\x61\x77\x61\x72\x65\x6e\x65\x73\x73\x00\x08\x64\x65\x63\x69\x73"
    "\x69\x6f\x6e\xc0\xa9\x07\x02\x05\x73\x74\x6f\x72\x65\x05\x32\x35\x2d"
    "\x33\x34\x05\x6f\x74\x68\x65\x72\x0d\x74\x6f\x75\x63\x68\x70\x6f\x69"
    "\x6e\x74\x73\x2f\x30\x01\x0d\x74\x6f\x75\x63\x68\x70\x6f\x69\x6e\x74"
    "\x73\x2f\x30\x10\x02\x08\x61\x64\x5f\x63\x6c\x69\x63\x6b\x01\x08\x70"
    "\x75\x72\x63\x68\x61\x73\x65\x01\x03\x02\x03\x77\x65\x62\x01\x05\x73"
    "\x74\x6f\x72\x65\x01\x00\x02\xb2\xcd\xa2\x88\x8f\x83\xf2\x02\xff\xc9"
    "\xa2\x88\x8f\xe3\xf1\x02\x00\x58\x34\xc8\xf7\x2c\xef\xff\xff\x3f\x34"
    "\xc8\xf7\x2c\xef\xff\xff\x3f\x34\x33\x33\x33\x33\x33\xd3\x3f";

/*
 * Packs s with names numbered by names (NULL: none) and reads it back
 * into back; returns the packed length.
 */
static size_t
repack(const struct name_table *names, const struct journey_state *s,
    struct journey_state *back)
{
	unsigned char	buf[CUSTOMER_PACKED_MAX];
	size_t		len = customer_pack(&model, names, NULL, s, buf,
			    sizeof(buf));

	assert_true(len > 0);
	assert_int_equal(customer_unpack(&model, names, back, buf, len), 0);
	return len;
}

/* the least packed state: where its bytes are */
#define MIN_TAG		(CUSTOMER_VERSION_LEN + 1)
#define MIN_STAGE	(MIN_TAG + CUSTOMER_TAG_LEN + 5) /* 4 times, entered */
#define MIN_MSEG	(MIN_STAGE + 3)	/* after events, segment */
#define MIN_WHOLE	(MIN_MSEG + 11)	/* sources, home, counts, ids... */
#define MIN_LEN		(MIN_WHOLE + 1)

static void
test_customer_pack_formats(void **state)
{
	struct journey_state	s, back;
	struct name_table	*names, *want;
	unsigned char		min[MIN_LEN];
	unsigned char		buf[CUSTOMER_PACKED_MAX];
	size_t			len;

	(void)state;
	/* format 1 reads back as the state it was, less the time of its
	 * deadline index entry, which it did not keep (0: moved at the
	 * next write) */
	packed_test_state(&s);
	assert_true(s.indexed_ms != 0);
	s.indexed_ms = 0;
	assert_int_equal(customer_unpack(&model, NULL, &back, format1,
	    sizeof(format1) - 1), 0);
	assert_memory_equal(&back, &s, sizeof(s));
	/* format 2 says the same: with no name table, a name is written
	 * out unless it repeats one the state holds before it (the stage,
	 * the map segment, home and the last channel) */
	len = repack(NULL, &s, &back);
	assert_memory_equal(&back, &s, sizeof(s));
	assert_true(len + 15 <= sizeof(format1) - 1);
	/* and with a name table, every name is a byte */
	names = name_table_new();
	want = name_table_new();
	assert_int_equal(customer_pack(&model, names, want, &s, buf,
	    sizeof(buf)), len);
	/* a state that numbers no name keeps no tag: any table reads it */
	name_table_add(names, "journeyd names 1.2", 18);
	assert_int_equal(customer_pack(&model, names, NULL, &s, buf,
	    sizeof(buf)), len);
	assert_memory_equal(buf + CUSTOMER_VERSION_LEN + 1, "\0\0\0\0",
	    CUSTOMER_TAG_LEN);
	assert_int_equal(customer_unpack(&model, NULL, &back, buf, len), 0);
	name_table_clear(names);
	/* the names written out, to be numbered; "other" is a reference */
	assert_int_equal(name_table_count(want), 8);
	assert_int_not_equal(name_table_find(want, "touchpoints/0"), -1);
	assert_int_equal(name_table_find(want, "other"), -1);
	for (int i = 0; i < name_table_count(want); i++)
		assert_int_equal(name_table_add(names, name_table_name(want, i),
		    strlen(name_table_name(want, i))), i);
	name_table_clear(want);
	len = customer_pack(&model, names, want, &s, buf, sizeof(buf));
	assert_int_equal(name_table_count(want), 0);
	assert_true(len + 80 <= sizeof(format1) - 1);
	assert_int_equal(customer_unpack(&model, names, &back, buf, len), 0);
	assert_memory_equal(&back, &s, sizeof(s));
	/* a name numbered after the table was read: unknown, not garbage */
	assert_int_equal(customer_unpack(&model, NULL, &back, buf, len),
	    CUSTOMER_NAME_UNKNOWN);
	name_table_clear(want);
	for (int i = 0; i < 5; i++)
		name_table_add(want, name_table_name(names, i),
		    strlen(name_table_name(names, i)));
	assert_int_equal(customer_unpack(&model, want, &back, buf, len),
	    CUSTOMER_NAME_UNKNOWN);
	/* a number the table holds without a name: unreadable */
	name_table_add(want, "", 0);
	for (int i = 6; i < name_table_count(names); i++)
		name_table_add(want, name_table_name(names, i),
		    strlen(name_table_name(names, i)));
	assert_int_equal(customer_unpack(&model, want, &back, buf, len), -1);
	name_table_free(want);

	/* names that repeat nothing before them are written out */
	s.entered_ms[s.stage] = 0;	/* a stage entered at the epoch */
	/* (whole fields compared: no bytes left after the names) */
	memset(s.mseg, 0, sizeof(s.mseg));
	memset(s.last_channel, 0, sizeof(s.last_channel));
	strcpy(s.mseg, "vip");
	strcpy(s.home, "touchpoints/9");
	strcpy(s.last_channel, "call_centre");
	s.value_total = 3;		/* whole: a varint */
	s.risk.engagement = 9007199254740994.0;	/* whole, but too big */
	s.risk.pain = 0.5;
	repack(NULL, &s, &back);
	assert_memory_equal(&back, &s, sizeof(s));
	repack(names, &s, &back);
	assert_memory_equal(&back, &s, sizeof(s));
	s.risk.engagement = -2;		/* whole, but negative */
	memset(s.last_channel, 0, sizeof(s.last_channel));
	memset(s.mseg, 0, sizeof(s.mseg));
	memset(s.home, 0, sizeof(s.home));
	s.stage = JOURNEY_NO_STAGE;
	repack(names, &s, &back);
	assert_memory_equal(&back, &s, sizeof(s));
	name_table_free(names);

	/* the least state there is, by hand: then one byte made wrong */
	memset(min, 0, sizeof(min));
	min[CUSTOMER_VERSION_LEN] = CUSTOMER_FORMAT;
	len = sizeof(min);
	assert_int_equal(customer_unpack(&model, NULL, &back, min, len), 0);
	assert_int_equal(back.stage, JOURNEY_NO_STAGE);
	/* the current stage as name 0 of a table: of none (tag 0), of one
	 * not read yet, of this one, of another one */
	names = name_table_new();
	name_table_add(names, "decision", 8);
	min[MIN_STAGE] = 2;
	assert_int_equal(customer_unpack(&model, names, &back, min, len), -1);
	for (int i = 0; i < CUSTOMER_TAG_LEN; i++)
		min[MIN_TAG + i] = (unsigned char)(name_table_tag(names) >>
		    (8 * (CUSTOMER_TAG_LEN - 1 - i)));
	assert_int_equal(customer_unpack(&model, NULL, &back, min, len),
	    CUSTOMER_NAME_UNKNOWN);
	assert_int_equal(customer_unpack(&model, names, &back, min, len), 0);
	assert_int_equal(back.stage, 2);
	/* another table's: its names are not these, whatever it holds */
	min[MIN_TAG + CUSTOMER_TAG_LEN - 1] ^= 1;
	assert_int_equal(customer_unpack(&model, names, &back, min, len),
	    CUSTOMER_NAME_UNKNOWN);
	min[MIN_TAG + CUSTOMER_TAG_LEN - 1] ^= 1;
	min[MIN_STAGE] = 0;
	/* the map segment as "other", then as name 0 of the table */
	min[MIN_MSEG] = 3;
	assert_int_equal(customer_unpack(&model, NULL, &back, min, len), 0);
	assert_string_equal(back.mseg, "other");
	min[MIN_MSEG] = 4;
	assert_int_equal(customer_unpack(&model, names, &back, min, len), 0);
	assert_string_equal(back.mseg, "decision");
	name_table_free(names);
	min[MIN_MSEG] = 0;
	/* a whole number of a sum that is not there */
	min[MIN_WHOLE] = 1;
	assert_int_equal(customer_unpack(&model, NULL, &back, min, len), -1);
}

static void
test_stage_change_alert(void **state)
{
	struct event		ev = ev_of("purchase", "web", INT64_C(1323435000000));
	struct alert_origin	o = { "cust-1", &ev, "touchpoints", 3, 41 };
	struct journey_change	c = { .kind = JOURNEY_CHANGE_STAGE, .from = 0,
				    .to = 2, .at_ms = ev.ts_ms,
				    .deadline_ms = -1 };
	char			id1[ALERT_ID_LEN], id2[ALERT_ID_LEN];
	struct alert_text	 text = { NULL, 0, 0, 0 };
	json_t			*j;

	(void)state;
	alert_id(&model, &c, &o, id1);
	alert_id(&model, &c, &o, id2);
	assert_string_equal(id1, id2);
	/* the same from build to build: consumers drop duplicates by it */
	assert_string_equal(id1, "03f8445fa0ce35204bea349fbff650d5");
	o.offset = 42;
	alert_id(&model, &c, &o, id2);
	assert_string_not_equal(id1, id2);
	/* with an event_id, the id follows the event, not its offset */
	strcpy(ev.event_id, "e-7");
	alert_id(&model, &c, &o, id1);
	o.offset = 99;
	alert_id(&model, &c, &o, id2);
	assert_string_equal(id1, id2);

	assert_int_equal(alert_encode(&model, &c, &o, id1, &text), 0);
	assert_int_equal(strlen(text.p), text.len);
	j = json_loads(text.p, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "alert_id")),
	    id1);
	assert_string_equal(json_string_value(json_object_get(j, "type")),
	    "stage_change");
	assert_string_equal(json_string_value(json_object_get(j,
	    "customer_id")), "cust-1");
	assert_string_equal(json_string_value(json_object_get(j, "from")),
	    "awareness");
	assert_string_equal(json_string_value(json_object_get(j, "to")),
	    "decision");
	assert_string_equal(json_string_value(json_object_get(j, "at")),
	    "2011-12-09T12:50:00.000Z");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j,
	    "event"), "id")), "e-7");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j,
	    "source"), "offset")), 99);
	json_decref(j);
	c.from = JOURNEY_NO_STAGE;
	c.to = 0;
	ev.event_id[0] = '\0';
	o.customer_id = "quote\" back\\slash \xc3\xa9t\xc3\xa9";
	alert_id(&model, &c, &o, id2);
	/* into the same text, which it replaces: a longer alert */
	assert_int_equal(alert_encode(&model, &c, &o, id2, &text), 0);
	assert_int_equal(strlen(text.p), text.len);
	j = json_loads(text.p, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_null(json_object_get(j, "from")));
	assert_true(json_is_null(json_object_get(json_object_get(j, "event"),
	    "id")));
	/* written as JSON text, read back the same */
	assert_string_equal(json_string_value(json_object_get(j,
	    "customer_id")), o.customer_id);
	json_decref(j);
	alert_text_free(&text);
}

/*
 * The deadline index entry (indexed_ms) is never later than the deadline,
 * and moves only when it has to: the first deadline, an earlier one, an
 * entry no longer ahead of the events, a timer that took it.
 */
static void
test_deadline_index(void **state)
{
	struct journey_model	m = model;
	struct journey_state	s, back;
	struct journey_result	res;
	struct event		ev;
	unsigned char		buf[CUSTOMER_PACKED_MAX];
	size_t			len;
	int64_t			t = INT64_C(1323435000000), first;

	(void)state;
	journey_state_init(&s);
	assert_int_equal(s.indexed_ms, 0);
	apply(&s, "ad_click", "web", t, 1);
	first = s.indexed_ms;
	assert_true(first == journey_deadline(&model, &s));
	/* a later event moves the deadline on, not the entry */
	apply(&s, "blog_read", "web", t + 60000, 2);
	assert_true(journey_deadline(&model, &s) > first);
	assert_true(s.indexed_ms == first);
	/* the packed form keeps it (format 3); format 2, which did not,
	 * still reads, and never has it */
	len = repack(NULL, &s, &back);
	assert_true(back.indexed_ms == first);
	assert_true(customer_pack(&model, NULL, NULL, &s, buf, sizeof(buf)) ==
	    len);
	buf[CUSTOMER_VERSION_LEN] = 2;
	assert_int_equal(customer_unpack(&model, NULL, &back, buf, len), -1);
	s.indexed_ms = 0;
	len = customer_pack(&model, NULL, NULL, &s, buf, sizeof(buf));
	buf[CUSTOMER_VERSION_LEN] = 2;
	assert_int_equal(customer_unpack(&model, NULL, &back, buf, len), 0);
	assert_memory_equal(&back, &s, sizeof(s));
	s.indexed_ms = first;
	/* a timer that takes it early finds nothing due, and moves it on */
	journey_settle(&model, &s, first, &res);
	assert_int_equal(res.nchanges, 0);
	assert_true(s.indexed_ms == journey_deadline(&model, &s));
	assert_true(s.indexed_ms > first);
	/* an event at or after the entry moves it to the deadline */
	journey_state_init(&s);
	apply(&s, "ad_click", "web", t, 1);
	first = s.indexed_ms;
	apply(&s, "blog_read", "web", first, 2);
	assert_true(s.indexed_ms == journey_deadline(&model, &s));
	assert_true(s.indexed_ms > first);
	/* a deadline earlier than the entry (a stage of shorter cadence) */
	m.cadence_ms[2] = 1000;
	journey_state_init(&s);
	ev = ev_of("ad_click", "web", t);
	assert_int_equal(journey_apply(&m, &s, &ev, "touchpoints/0", 1, &res),
	    0);
	first = s.indexed_ms;
	ev = ev_of("purchase", "web", t + 1);
	assert_int_equal(journey_apply(&m, &s, &ev, "touchpoints/0", 2, &res),
	    0);
	assert_int_equal(s.stage, 2);
	assert_true(s.indexed_ms == journey_deadline(&m, &s));
	assert_true(s.indexed_ms < first);
	/* churned: no deadline, no entry */
	journey_settle(&m, &s, t + INT64_C(365) * 86400000, &res);
	assert_true(s.risk.churned_ms != CHURN_NOT_CHURNED);
	assert_true(journey_deadline(&m, &s) == CHURN_NEVER);
	assert_int_equal(s.indexed_ms, 0);
	/* a state stored before the entry's time was kept (0, not known):
	 * any write indexes it, even one of a repeated event_id, which moves
	 * only the offset */
	journey_state_init(&s);
	ev = ev_of("ad_click", "web", t);
	strcpy(ev.event_id, "e-1");
	assert_int_equal(journey_apply(&model, &s, &ev, "touchpoints/0", 1,
	    &res), 0);
	s.indexed_ms = 0;
	assert_int_equal(journey_apply(&model, &s, &ev, "touchpoints/0", 2,
	    &res), 0);
	assert_int_equal(res.outcome, JOURNEY_DUPLICATE_ID);
	assert_true(s.indexed_ms == journey_deadline(&model, &s));
}

/*
 * The deadline tag follows what a deadline is computed from, and nothing
 * else; and a settle under a model whose deadlines come earlier moves an
 * entry made under the old one to the new deadline (what a sweep of the
 * index after such a change relies on).
 */
static void
test_deadline_tag(void **state)
{
	struct journey_model	m = model;
	struct journey_state	s;
	struct journey_result	res;
	struct event		ev;
	uint64_t		tag = journey_model_deadline_tag(&model);
	int64_t			t = INT64_C(1323435000000), old;

	(void)state;
	assert_true(journey_model_deadline_tag(&m) == tag);
	assert_int_equal(add_rule(&m, 0, 0, "search_visit"), 0);
	assert_true(journey_model_deadline_tag(&m) == tag);
	m.cadence_ms[3] = 1000;
	assert_true(journey_model_deadline_tag(&m) != tag);
	m = model;
	m.cadence_default_ms /= 2;
	assert_true(journey_model_deadline_tag(&m) != tag);
	m = model;
	m.churn.after_ms /= 2;
	assert_true(journey_model_deadline_tag(&m) != tag);
	m = model;
	m.churn.threshold[CHURN_HIGH] -= 0.125;
	assert_true(journey_model_deadline_tag(&m) != tag);
	m = model;
	m.churn.weight[CHURN_PAIN] += 1;
	assert_true(journey_model_deadline_tag(&m) != tag);
	m = model;
	strcpy(m.stage[4], "advocacy");
	assert_true(journey_model_deadline_tag(&m) != tag);

	journey_state_init(&s);
	ev = ev_of("ad_click", "web", t);
	assert_int_equal(journey_apply(&model, &s, &ev, "touchpoints/0", 1,
	    &res), 0);
	old = s.indexed_ms;
	m = model;
	m.cadence_default_ms /= 4;
	assert_true(journey_deadline(&m, &s) < old);
	journey_settle(&m, &s, t + 1, &res);
	assert_int_equal(res.nchanges, 0);
	assert_true(s.indexed_ms == journey_deadline(&m, &s));
	/* one that comes later leaves it where it is: it is found early */
	m.cadence_default_ms *= 16;
	journey_settle(&m, &s, t + 1, &res);
	assert_true(s.indexed_ms < journey_deadline(&m, &s));
}

/*
 * By the event clock, a timer leaves alone a deadline an event within the
 * lateness may still bring: an event at the very deadline, clock.lateness
 * behind the latest, finds it unsettled, as it would had it come first.
 */
static void
test_event_clock_boundary(void **state)
{
	struct journey_state	s, first;
	struct journey_result	res, res_first;
	int64_t			t = INT64_C(1323435000000), late = 60000, d;

	(void)state;
	journey_state_init(&s);
	apply(&s, "ad_click", "web", t, 1);
	d = journey_deadline(&model, &s);
	first = s;
	journey_settle(&model, &s, churn_clock_now(1, 0, d + late, late),
	    &res);
	assert_int_equal(res.nchanges, 0);
	res = apply(&s, "blog_read", "web", d, 2);
	res_first = apply(&first, "blog_read", "web", d, 2);
	assert_int_equal(res.nchanges, res_first.nchanges);
	assert_int_equal(s.risk.level, first.risk.level);
	assert_true(s.risk.score == first.risk.score);
}

/*
 * A late event (older than the customer's latest) does not end the
 * silence the timers have settled: no fall of risk, no churned customer
 * put back to low, and the next rise is a new one.
 */
static void
test_late_event_keeps_risk(void **state)
{
	struct journey_state	s;
	struct journey_result	res;
	int64_t			t = INT64_C(1323435000000);
	int64_t			day = INT64_C(86400000);

	(void)state;
	journey_state_init(&s);
	apply(&s, "purchase", "web", t, 1);
	journey_settle(&model, &s, t + 66 * day, &res);
	assert_true(s.risk.level >= CHURN_MEDIUM);
	res = apply(&s, "product_view", "web", t - 3600000, 2);
	for (int i = 0; i < res.nchanges; i++)
		assert_false(res.change[i].kind == JOURNEY_CHANGE_RISK &&
		    res.change[i].to < res.change[i].from);
	assert_true(s.risk.level >= CHURN_MEDIUM);
	journey_settle(&model, &s, t + 365 * day, &res);
	assert_true(s.risk.churned_ms != CHURN_NOT_CHURNED);
	res = apply(&s, "product_view", "web", t - 7200000, 3);
	assert_int_equal(s.risk.level, CHURN_HIGH);
	assert_true(s.risk.churned_ms != CHURN_NOT_CHURNED);
}

/*
 * A survey answer is a sentiment sample: its score scaled from the type's
 * range onto -1..1 (clamped), unless the event has a sentiment of its own;
 * without the property, none.
 */
static void
test_scaled_sentiment(void **state)
{
	struct journey_model	m = model;
	struct journey_scale	sc;
	struct journey_state	s;
	struct journey_result	res;
	struct event		ev = ev_of("nps", "email", INT64_C(1323435000000));
	char			err[JOURNEY_RULE_ERR_MAX];
	double			v;
	const struct {
		const char	*properties;
		int		 felt;
		double		 sentiment;
	} cases[] = {
		{ "{\"score\":0}", 1, -1 }, { "{\"score\":10}", 1, 1 },
		{ "{\"score\":7.5}", 1, 0.5 }, { "{\"score\":12}", 1, 1 },
		{ "{\"rating\":3}", 0, 0 }, { "{\"score\":\"9\"}", 0, 0 },
	};

	(void)state;
	assert_int_equal(journey_scale_parse("score 0..10", &sc, err), 0);
	assert_int_equal(journey_model_set_sentiment_scale(&m, "nps", &sc), 0);
	journey_model_finish(&m);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		set_properties(&ev, cases[i].properties);
		assert_int_equal(journey_event_sentiment(
		    journey_model_trait(&m, ev.type), &ev, &v),
		    cases[i].felt);
		if (cases[i].felt)
			assert_true(v == cases[i].sentiment);
	}
	ev.has_sentiment = 1;
	ev.sentiment = 0.25;
	set_properties(&ev, "{\"score\":0}");
	assert_int_equal(journey_event_sentiment(
	    journey_model_trait(&m, ev.type), &ev, &v), 1);
	assert_true(v == 0.25);
	/* and it moves the customer's emotion */
	ev.has_sentiment = 0;
	journey_state_init(&s);
	assert_int_equal(journey_apply(&m, &s, &ev, "touchpoints/0", 1, &res),
	    0);
	assert_true(s.risk.sentiment_w > 0);
	assert_true(s.risk.sentiment_ws / s.risk.sentiment_w == -1);
}

static void
test_churn_alerts(void **state)
{
	struct alert_origin	o = { "cust-9", NULL, NULL, 0, 0 };
	struct journey_change	c = { .kind = JOURNEY_CHANGE_RISK,
				    .from = CHURN_LOW, .to = CHURN_HIGH,
				    .stage = 4,
				    .at_ms = 86400000, .deadline_ms = 86400000,
				    .score = 0.71234,
				    .reasons = "inactive 41d, cadence 12d; "
				    "sentiment -0.60" };
	struct journey_change	by_event;
	struct event		ev;
	char			id1[ALERT_ID_LEN], id2[ALERT_ID_LEN];
	struct alert_text	 text = { NULL, 0, 0, 0 };
	json_t			*j, *reasons;

	(void)state;
	/* a timer's change: the id follows the deadline, no event needed */
	alert_id(&model, &c, &o, id1);
	c.deadline_ms++;
	alert_id(&model, &c, &o, id2);
	assert_string_not_equal(id1, id2);
	c.deadline_ms--;
	c.to = CHURN_MEDIUM;
	alert_id(&model, &c, &o, id2);
	assert_string_not_equal(id1, id2);
	c.to = CHURN_HIGH;
	/* an event whose id spells the deadline is not the timer's alert */
	ev = ev_of("login", "web", c.deadline_ms);
	strcpy(ev.event_id, "deadline@86400000");
	by_event = c;
	by_event.deadline_ms = -1;
	o.event = &ev;
	alert_id(&model, &by_event, &o, id2);
	assert_string_not_equal(id1, id2);
	o.event = NULL;
	c.at_ms = c.deadline_ms;
	assert_int_equal(alert_encode(&model, &c, &o, id1, &text), 0);
	j = json_loads(text.p, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")),
	    "churn_risk");
	assert_string_equal(json_string_value(json_object_get(j, "level")),
	    "high");
	assert_string_equal(json_string_value(json_object_get(j, "previous")),
	    "low");
	assert_string_equal(json_string_value(json_object_get(j, "cause")),
	    "inactivity");
	assert_true(json_real_value(json_object_get(j, "score")) == 0.712);
	reasons = json_object_get(j, "reasons");
	assert_int_equal(json_array_size(reasons), 2);
	assert_string_equal(json_string_value(json_array_get(reasons, 1)),
	    "sentiment -0.60");
	assert_null(json_object_get(j, "event"));
	assert_string_equal(json_string_value(json_object_get(j, "stage")),
	    "loyalty");
	json_decref(j);
	c.kind = JOURNEY_CHANGE_CHURNED;
	c.from = c.to = c.stage = 3;
	/* shorter than the alert before it, in the same text */
	assert_int_equal(alert_encode(&model, &c, &o, id1, &text), 0);
	assert_int_equal(strlen(text.p), text.len);
	j = json_loads(text.p, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")),
	    "churned");
	assert_string_equal(json_string_value(json_object_get(j, "stage")),
	    "retention");
	json_decref(j);
	alert_text_free(&text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_forward_only_and_jumps),
		cmocka_unit_test(test_new_customer_unknown_type),
		cmocka_unit_test(test_replay_and_late_events),
		cmocka_unit_test(test_sources_are_bounded),
		cmocka_unit_test(test_count_rules),
		cmocka_unit_test(test_property_rules),
		cmocka_unit_test(test_demotion),
		cmocka_unit_test(test_rule_operators),
		cmocka_unit_test(test_mildest_demotion),
		cmocka_unit_test(test_duplicate_event_ids),
		cmocka_unit_test(test_action_counts_bounded),
		cmocka_unit_test(test_customer_pack_roundtrip),
		cmocka_unit_test(test_customer_unpack_refuses_values),
		cmocka_unit_test(test_customer_pack_formats),
		cmocka_unit_test(test_customer_change_split),
		cmocka_unit_test(test_customer_key),
		cmocka_unit_test(test_stage_change_alert),
		cmocka_unit_test(test_churn_alerts),
		cmocka_unit_test(test_deadline_index),
		cmocka_unit_test(test_deadline_tag),
		cmocka_unit_test(test_event_clock_boundary),
		cmocka_unit_test(test_late_event_keeps_risk),
		cmocka_unit_test(test_scaled_sentiment),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
