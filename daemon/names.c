/*
 * names.c: this instance's copy of the name table Redis keeps in
 * <prefix>names (names_*), with which customer states are packed for Redis
 * and read back: a list whose positions are the names' numbers, to which
 * the state script only ever appends (README "Redis keys").
 *
 * The copy is read on every connection, before anything else is read on
 * it, and again whenever the state script reports the list has grown
 * (names it numbered for us or for another instance). It is read on the
 * reader, where customers are loaded: a read brings every name Redis had
 * when it ran, and replies on one connection come in order, so a customer
 * loaded after a read of the table never numbers a name the copy lacks;
 * one loaded before may, and is loaded again after the table (batch.c).
 * (On the writer, the table's read would come after the writes in flight,
 * and the customer's second load before it.)
 *
 * A read always takes the whole list: cheap (it changes rarely, and holds
 * at most NAME_TABLE_MAX names), and it tells whether the list is still
 * the table copied (the same first name, a name unique to each table)
 * before appending what lies beyond the copy; if not, the copy starts
 * afresh.
 *
 * The state script refuses a write whose numbers come from a table Redis
 * no longer holds (the list shorter than the copy, or another first name),
 * and journeyd reconnects, which reads the table afresh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journeyd.h"
#include "log.h"

struct names {
	struct name_table	*table;
	int			 reading;	/* reads in flight */
	long long		 reported;	/* the longest list seen */
	uint64_t		 generation;	/* moves with every change */
};

int
names_init(struct journeyd *env)
{
	if ((env->names = calloc(1, sizeof(*env->names))) == NULL)
		return -1;
	if ((env->names->table = name_table_new()) == NULL) {
		free(env->names);
		env->names = NULL;
		return -1;
	}
	return 0;
}

void
names_free(struct journeyd *env)
{
	if (env->names == NULL)
		return;
	name_table_free(env->names->table);
	free(env->names);
	env->names = NULL;
}

const struct name_table *
names_table(struct journeyd *env)
{
	return env->names->table;
}

uint64_t
names_generation(struct journeyd *env)
{
	return env->names->generation;
}

/*
 * Whether list (a reply) is the table t copies: the same first name (or,
 * for a first entry that is no name, again none).
 */
static int
same_table(const struct name_table *t, const redisReply *list)
{
	const char	*first = name_table_name(t, 0);
	redisReply	*e;

	if (list->elements == 0)
		return 0;
	e = list->element[0];
	if (first == NULL)
		return e->type != REDIS_REPLY_STRING ||
		    !name_table_can_hold(e->str, e->len);
	return e->type == REDIS_REPLY_STRING && e->len == strlen(first) &&
	    memcmp(e->str, first, e->len) == 0;
}

static void
on_names(struct journeyd *env, redisReply *r, void *arg)
{
	struct names	*n = env->names;
	int		 had = name_table_count(n->table), changed = 0;

	(void)arg;
	n->reading--;
	/*
	 * Refused (busy, loading, an ACL): Redis's trouble, as for a load.
	 * Going on would find the customers waiting for these names
	 * unreadable, and dead-letter their events. A key of another type
	 * would refuse each time: reconnecting would not end.
	 */
	if (r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "WRONGTYPE", 9) != 0) {
		redis_store_fail(env, "cannot read the name table", r->str);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY) {
		log_warnx("redis: cannot read the name table: %s",
		    r->type == REDIS_REPLY_ERROR ? r->str : "not a list");
		return;
	}
	if (had > 0 && (!same_table(n->table, r) || r->elements <
	    (size_t)had)) {
		log_warnx("redis: the name table is not the one read before; "
		    "reading it afresh");
		name_table_clear(n->table);
		changed = 1;
	}
	/* what an earlier read brought already is there */
	for (size_t i = (size_t)name_table_count(n->table);
	    i < r->elements && name_table_count(n->table) < NAME_TABLE_MAX;
	    i++) {
		redisReply	*e = r->element[i];

		changed = 1;
		/* one it cannot hold still takes its number, nameless */
		if (e->type != REDIS_REPLY_STRING || name_table_add(n->table,
		    e->str, e->len) == -1)
			log_warnx("redis: name %zu of the name table is not a "
			    "name; states that use it are unreadable", i);
	}
	if (changed)
		n->generation++;
	/*
	 * A write numbered more meanwhile. A read that changed nothing is
	 * the end: the list was cut short, and the next write will say so.
	 */
	if (n->reading == 0 && changed &&
	    n->reported > name_table_count(n->table))
		names_read_all(env);
}

void
names_read_all(struct journeyd *env)
{
	char		 key[CONFIG_PREFIX_MAX + 8];
	const char	*argv[] = { "LRANGE", key, "0", "-1" };
	size_t		 argvlen[4];

	snprintf(key, sizeof(key), "%snames", env->conf->redis_prefix);
	for (int i = 0; i < 4; i++)
		argvlen[i] = strlen(argv[i]);
	if (redis_store_read(env, on_names, NULL, 4, argv, argvlen) == 0)
		env->names->reading++;
}

void
names_redis_ready(struct journeyd *env)
{
	struct names	*n = env->names;

	/* replies of the lost connection never come */
	n->reading = 0;
	n->reported = 0;
	name_table_clear(n->table);
	n->generation++;
	names_read_all(env);
}

void
names_reported(struct journeyd *env, long long count)
{
	struct names	*n = env->names;

	if (count > n->reported)
		n->reported = count;
	if (n->reading == 0 && count > name_table_count(n->table) &&
	    name_table_count(n->table) < NAME_TABLE_MAX)
		names_read_all(env);
}
