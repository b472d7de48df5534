/*
 * test_map_view.c: the journey map read back from its counters: sums over
 * segments, conversion onward, medians from the time buckets, entries in
 * a window of days, top lists, opportunities and the JSON document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "map_view.h"

static struct journey_model	model;

static int
setup(void **state)
{
	(void)state;
	journey_model_init(&model);
	journey_model_add_stage(&model, "awareness");
	journey_model_add_stage(&model, "decision");
	journey_model_add_stage(&model, "loyalty");
	return 0;
}

static void
add(struct map_view *v, const char *field, const char *value)
{
	assert_int_equal(map_view_add(v, field, strlen(field), value,
	    strlen(value)), 0);
}

/* two segments' worth of counters */
static void
fill(struct map_view *v)
{
	add(v, "awareness:entries", "60");
	add(v, "awareness:entries", "40");
	add(v, "awareness:in", "30");
	add(v, "awareness:at_risk", "12");
	add(v, "awareness:high_risk", "4");
	add(v, "awareness:churned", "3");
	add(v, "decision:in", "2");
	add(v, "decision:churned", "1");
	add(v, "awareness>decision", "50");
	add(v, "awareness>loyalty", "10");
	add(v, "awareness>decision:ms", "1000");
	add(v, "decision>awareness", "5");	/* a demotion: not onward */
	add(v, "decision:entries", "55");
	add(v, "decision>loyalty", "11");
	add(v, "awareness:left:3", "10");
	add(v, "awareness:left:5", "40");
	add(v, "awareness:left:9", "10");
	add(v, "decision:left:12", "11");
	add(v, "awareness:a:ad_click", "70");
	add(v, "awareness:a:blog_read", "90");
	add(v, "awareness:a:search", "90");
	add(v, "decision:pain:complaint", "4");
	add(v, "decision:pain:refund", "2");
	add(v, "awareness:sent_milli", "1500");
	add(v, "awareness:sent_n", "5");
	add(v, "decision:sent_milli", "-900");
	add(v, "decision:sent_n", "3");
	add(v, "awareness:day:2026-01-01", "20");
	add(v, "awareness:day:2026-01-04", "7");	/* just before a window */
	add(v, "awareness:day:2026-01-05", "30");
	add(v, "awareness:day:2026-01-07", "50");
	add(v, "decision:day:2026-01-06", "55");
	add(v, "nowhere:in", "9");		/* a stage the model lacks */
	add(v, "awareness:bogus", "9");
}

static void
test_figures(void **state)
{
	struct map_view		 v;
	struct map_view_count	 top[MAP_VIEW_TOP];
	const struct map_view_stage *a = &v.stage[0], *d = &v.stage[1];

	(void)state;
	map_view_init(&v, &model, 3);
	fill(&v);
	map_view_finish(&v);
	assert_int_equal(a->entries, 100);
	assert_int_equal(a->moved_on, 60);
	/* the gauges, each its own */
	assert_int_equal(a->in, 30);
	assert_int_equal(a->at_risk, 12);
	assert_int_equal(a->high_risk, 4);
	assert_int_equal(a->churned, 3);
	assert_int_equal(d->in, 2);
	assert_int_equal(d->at_risk, 0);
	assert_int_equal(d->churned, 1);
	assert_true(a->conversion == 0.6);
	assert_true(d->conversion == 0.2);
	assert_true(v.stage[2].conversion < 0);	/* the last stage */
	/* 60 moved on: the 30th is in bucket 5, under 2^5 minutes */
	assert_int_equal(a->median_ms, map_bucket_ms(5));
	assert_int_equal(d->median_ms, map_bucket_ms(12));
	assert_true(a->sentiment == 0.3);
	assert_true(d->sentiment == -0.3);
	assert_int_equal(d->pain_total, 6);
	/* the window: three days up to the latest, Jan 5 to Jan 7 (not
	 * Jan 4) */
	assert_int_equal(a->entries_window, 80);
	assert_int_equal(d->entries_window, 55);
	assert_int_equal(map_view_top(&a->actions, MAP_VIEW_TOP, top), 3);
	assert_string_equal(top[0].name, "blog_read");	/* ties by name */
	assert_string_equal(top[1].name, "search");
	assert_int_equal(top[2].count, 70);
	assert_int_equal(v.opportunity[MAP_VIEW_DROPOFF], 1);
	assert_int_equal(v.opportunity[MAP_VIEW_SLOWEST], 1);
	assert_int_equal(v.opportunity[MAP_VIEW_UNHAPPIEST], 1);
	map_view_free(&v);
}

/* The median: the bucket where half the customers, rounded up, have left. */
static void
test_median_half(void **state)
{
	struct map_view	v;

	(void)state;
	map_view_init(&v, &model, 0);
	add(&v, "awareness:left:2", "5");	/* exactly half */
	add(&v, "awareness:left:7", "5");
	add(&v, "decision:left:2", "5");	/* one short of half */
	add(&v, "decision:left:7", "6");
	map_view_finish(&v);
	assert_int_equal(v.stage[0].median_ms, map_bucket_ms(2));
	assert_int_equal(v.stage[1].median_ms, map_bucket_ms(7));
	assert_int_equal(v.stage[2].median_ms, -1);	/* nobody left */
	map_view_free(&v);
}

/*
 * A segment's latest day is its latest with entries: a customer changing
 * segment takes its entry's day along, leaving 0 where it was.
 */
static void
test_window_ends_at_entries(void **state)
{
	struct map_view	v;

	(void)state;
	map_view_init(&v, &model, 1);
	add(&v, "awareness:day:2026-01-01", "1");
	add(&v, "awareness:day:2026-01-05", "0");
	map_view_finish(&v);
	assert_int_equal(v.stage[0].entries_window, 1);
	map_view_free(&v);
}

static void
test_json(void **state)
{
	struct map_view	 v;
	json_t		*j, *st;

	(void)state;
	map_view_init(&v, &model, 0);
	fill(&v);
	map_view_finish(&v);
	j = map_view_json(&v, "vip");
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "segment")),
	    "vip");
	assert_string_equal(json_string_value(json_object_get(j, "until")),
	    "2026-01-07");
	st = json_array_get(json_object_get(j, "stages"), 0);
	assert_string_equal(json_string_value(json_object_get(st, "name")),
	    "awareness");
	assert_int_equal(json_integer_value(json_object_get(st, "entries")),
	    100);
	/* window 0 is all time */
	assert_int_equal(json_integer_value(json_object_get(st,
	    "entries_window")), 100);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st,
	    "next"), "loyalty")), 10);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(st, "actions"), 0), "name")), "blog_read");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_object_get(j, "opportunities"), "dropoff"), "stage")),
	    "decision");
	assert_true(json_is_null(json_object_get(json_array_get(
	    json_object_get(j, "stages"), 2), "conversion")));
	json_decref(j);
	map_view_free(&v);
}

/*
 * Top lists see every name, however many the hashes hold: the largest
 * comes after 200 others here, and is counted in two segments.
 */
static void
test_top_of_many(void **state)
{
	struct map_view		 v;
	struct map_view_count	 top[MAP_VIEW_TOP];
	char			 field[64];

	(void)state;
	map_view_init(&v, &model, 0);
	for (int i = 0; i < 200; i++) {
		snprintf(field, sizeof(field), "awareness:a:type%03d", i);
		add(&v, field, "1");
	}
	add(&v, "awareness:a:signup", "3");
	add(&v, "awareness:a:type150", "1");	/* another segment's */
	add(&v, "awareness:a:signup", "2");
	map_view_finish(&v);
	assert_int_equal(map_view_top(&v.stage[0].actions, MAP_VIEW_TOP, top),
	    MAP_VIEW_TOP);
	assert_string_equal(top[0].name, "signup");
	assert_int_equal(top[0].count, 5);
	assert_string_equal(top[1].name, "type150");
	assert_int_equal(top[1].count, 2);
	assert_string_equal(top[2].name, "type000");
	assert_int_equal(v.stage[0].actions.n, 201);
	map_view_free(&v);
}

/*
 * Each counter is a Redis integer, but their sums over segments may pass
 * what one holds: they stop at the bound (UBSan: no signed overflow).
 */
static void
test_sums_stop_at_the_bound(void **state)
{
	struct map_view		 v;
	struct map_view_count	 top[MAP_VIEW_TOP];
	const char		*big = "9223372036854775807";
	const struct map_view_stage *a = &v.stage[0];

	(void)state;
	map_view_init(&v, &model, 3);
	for (int seg = 0; seg < 2; seg++) {
		add(&v, "awareness:entries", big);
		add(&v, "awareness>decision", big);
		add(&v, "awareness>decision:ms", big);
		add(&v, "awareness:left:3", big);
		add(&v, "awareness:left:4", big);
		add(&v, "awareness:a:search", big);
		add(&v, "awareness:day:2026-01-01", big);
		add(&v, "awareness:sent_milli", "-9223372036854775808");
	}
	add(&v, "awareness:left:99", "5");	/* no such bucket */
	add(&v, "awareness:left:x", "5");
	map_view_finish(&v);
	assert_int_equal(a->entries, INT64_MAX);
	assert_int_equal(a->moved_on, INT64_MAX);
	assert_int_equal(a->moved_on_ms, INT64_MAX);
	assert_int_equal(a->entries_window, INT64_MAX);
	assert_int_equal(a->sent_milli, INT64_MIN);
	assert_int_equal(a->median_ms, map_bucket_ms(3));
	assert_int_equal(map_view_top(&a->actions, MAP_VIEW_TOP, top), 1);
	assert_int_equal(top[0].count, INT64_MAX);
	map_view_free(&v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_figures),
		cmocka_unit_test(test_median_half),
		cmocka_unit_test(test_window_ends_at_entries),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_top_of_many),
		cmocka_unit_test(test_sums_stop_at_the_bound),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
