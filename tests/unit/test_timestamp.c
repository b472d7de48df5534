/*
 * test_timestamp.c: ISO-8601 parsing and formatting of event time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "timestamp.h"

static int64_t
parse(const char *s)
{
	int64_t	ms = -42;

	if (timestamp_parse_iso8601(s, strlen(s), &ms) == -1)
		return -1;
	return ms;
}

static void
test_forms(void **state)
{
	(void)state;
	assert_int_equal(parse("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(parse("2017-06-14"), INT64_C(1497398400000));
	assert_int_equal(parse("2011-12-09 12:50:00"), INT64_C(1323435000000));
	assert_int_equal(parse("2011-12-09T12:50:00.250Z"),
	    INT64_C(1323435000250));
	assert_int_equal(parse("2011-12-09T14:50:00+02:00"),
	    INT64_C(1323435000000));
	assert_int_equal(parse("2011-12-09T10:50:00-0200"),
	    INT64_C(1323435000000));
	assert_int_equal(parse("2000-02-29T00:00"), INT64_C(951782400000));
	assert_int_equal(parse("1969-12-31T23:59:59Z"), -1000);
}

static void
test_rejects(void **state)
{
	const char	*bad[] = { "", "2017", "2017-13-01", "2017-02-29",
	    "2017-06-14T25:00:00Z", "2017-06-14T12:00:00Zjunk", "yesterday",
	    "2017-06-14T12:00:00.Z", "2017-06-14T12:00:00+2", "17-06-14" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int64_t	ms;

		assert_int_equal(timestamp_parse_iso8601(bad[i], strlen(bad[i]),
		    &ms), -1);
	}
}

static void
test_format_roundtrip(void **state)
{
	char		out[TIMESTAMP_ISO_LEN];
	const int64_t	samples[] = { 0, 1, 999, INT64_C(1323435000250),
	    INT64_C(951782400000), TIMESTAMP_MAX_MS };

	(void)state;
	timestamp_format_iso8601(INT64_C(1323435000250), out);
	assert_string_equal(out, "2011-12-09T12:50:00.250Z");
	for (size_t i = 0; i < sizeof(samples) / sizeof(*samples); i++) {
		timestamp_format_iso8601(samples[i], out);
		assert_int_equal(parse(out), samples[i]);
	}
}

static void
test_durations(void **state)
{
	const struct {
		int64_t		 ms;
		const char	*text;
	} cases[] = { { 0, "0ms" }, { 250, "250ms" }, { 1000, "1s" },
	    { 2200, "2s" }, { 750000, "12m30s" }, { 3600000, "1h" },
	    { INT64_C(122400000), "1d10h" }, { INT64_C(3542400000), "41d" } };
	char	out[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		timestamp_format_duration(cases[i].ms, out, sizeof(out));
		assert_string_equal(out, cases[i].text);
	}
}

/* a duration in ms as the timeval a timer is armed with */
static void
test_timeval(void **state)
{
	struct timeval	tv;

	(void)state;
	tv = timestamp_timeval(0);
	assert_true(tv.tv_sec == 0 && tv.tv_usec == 0);
	tv = timestamp_timeval(1999);
	assert_true(tv.tv_sec == 1 && tv.tv_usec == 999000);
	tv = timestamp_timeval(300000);
	assert_true(tv.tv_sec == 300 && tv.tv_usec == 0);
}

/* the wall clock, in the units of event time */
static void
test_now(void **state)
{
	int64_t	before = (int64_t)time(NULL) * 1000, now = timestamp_now_ms();

	(void)state;
	assert_true(now >= before && now < before + 2000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_timeval),
		cmocka_unit_test(test_now),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
