/*
 * test_name_table.c: names by number and numbers by name, as Redis's list
 * of them has them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "name_table.h"

static void
test_numbers(void **state)
{
	struct name_table	*t = name_table_new();
	char			 long_name[NAME_TABLE_NAME_MAX + 2];
	unsigned int		 tag;

	(void)state;
	assert_non_null(t);
	assert_int_equal(name_table_find(t, "web"), -1);
	assert_null(name_table_name(t, 0));
	assert_int_equal(name_table_add(t, "web", 3), 0);
	/* the length given, not the NUL: a name out of a Redis reply */
	assert_int_equal(name_table_add(t, "purchase!", 8), 1);
	assert_int_equal(name_table_find(t, "purchase"), 1);
	assert_string_equal(name_table_name(t, 1), "purchase");
	/* a name added again takes a number of its own; lookups find the
	 * first, and the second still reads back */
	assert_int_equal(name_table_add(t, "web", 3), 2);
	assert_int_equal(name_table_find(t, "web"), 0);
	assert_string_equal(name_table_name(t, 2), "web");
	/* what it cannot hold takes a number, nameless: numbers stay where
	 * Redis has them */
	memset(long_name, 'x', sizeof(long_name));
	assert_int_equal(name_table_add(t, long_name, NAME_TABLE_NAME_MAX + 1),
	    -1);
	assert_int_equal(name_table_add(t, "", 0), -1);
	assert_int_equal(name_table_add(t, "a\0b", 3), -1);
	assert_false(name_table_can_hold("a\0b", 3));
	/* no name journeyd writes: a damaged or another program's table */
	assert_false(name_table_can_hold("a\033[2Jb", 6));
	assert_false(name_table_can_hold("a\177b", 3));
	assert_false(name_table_can_hold("a\377b", 3));
	assert_true(name_table_can_hold("caf\303\251", 5));
	/* events refuse C1 controls now, but earlier builds stored
	 * them: their customers must stay readable */
	assert_true(name_table_can_hold("a\302\233b", 4));
	assert_false(name_table_can_hold(long_name, NAME_TABLE_NAME_MAX + 1));
	assert_true(name_table_can_hold(long_name, NAME_TABLE_NAME_MAX));
	assert_int_equal(name_table_count(t), 6);
	assert_null(name_table_name(t, 3));
	assert_null(name_table_name(t, 5));
	assert_null(name_table_name(t, 6));
	assert_null(name_table_name(t, -1));
	assert_int_equal(name_table_add(t, long_name, NAME_TABLE_NAME_MAX), 6);
	long_name[NAME_TABLE_NAME_MAX] = '\0';
	assert_int_equal(name_table_find(t, long_name), 6);
	/* the tag follows the first name only */
	assert_int_not_equal(name_table_tag(t), 0);
	tag = name_table_tag(t);
	name_table_clear(t);
	assert_int_equal(name_table_tag(t), 0);
	assert_int_equal(name_table_add(t, "web", 3), 0);
	assert_int_equal(name_table_tag(t), tag);
	name_table_clear(t);
	assert_int_equal(name_table_add(t, "journeyd names 1.2", 18), 0);
	assert_int_not_equal(name_table_tag(t), tag);
	name_table_clear(t);
	assert_int_equal(name_table_count(t), 0);
	assert_int_equal(name_table_find(t, "web"), -1);
	assert_int_equal(name_table_add(t, "store", 5), 0);
	name_table_free(t);
}

static void
test_full(void **state)
{
	struct name_table	*t = name_table_new();
	char			 name[32];

	(void)state;
	for (int i = 0; i < NAME_TABLE_MAX; i++) {
		int	n = snprintf(name, sizeof(name), "type-%d", i);

		assert_int_equal(name_table_add(t, name, (size_t)n), i);
	}
	/* full: nothing more, not even a number */
	assert_int_equal(name_table_add(t, "one-more", 8), -1);
	assert_int_equal(name_table_count(t), NAME_TABLE_MAX);
	assert_int_equal(name_table_find(t, "one-more"), -1);
	for (int i = 0; i < NAME_TABLE_MAX; i += 97) {
		snprintf(name, sizeof(name), "type-%d", i);
		assert_int_equal(name_table_find(t, name), i);
	}
	name_table_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
