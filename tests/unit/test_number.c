/*
 * test_number.c: decimal integers written without printf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "number.h"

/* what number_format_* wrote, as a string */
static const char *
text(size_t n, char buf[NUMBER_TEXT_MAX + 1])
{
	buf[n] = '\0';
	return buf;
}

static void
test_unsigned(void **state)
{
	char		buf[NUMBER_TEXT_MAX + 1];
	uint64_t	v[] = { 0, 9, 10, 1234567890, UINT64_MAX };
	char		want[32];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		snprintf(want, sizeof(want), "%ju", (uintmax_t)v[i]);
		assert_string_equal(text(number_format_u64(buf, v[i]), buf),
		    want);
	}
}

static void
test_signed(void **state)
{
	char	buf[NUMBER_TEXT_MAX + 1];
	int64_t	v[] = { 0, -1, 42, -1000, INT64_MAX, INT64_MIN };
	char	want[32];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		snprintf(want, sizeof(want), "%jd", (intmax_t)v[i]);
		assert_string_equal(text(number_format_i64(buf, v[i]), buf),
		    want);
	}
	/* the longest fits the documented room */
	assert_int_equal(number_format_i64(buf, INT64_MIN), NUMBER_TEXT_MAX);
	assert_int_equal(number_format_u64(buf, UINT64_MAX), NUMBER_TEXT_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unsigned),
		cmocka_unit_test(test_signed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
