/*
 * names.c: this instance's copy of the name table Redis keeps in
 * <prefix>names (names_*), with which customer states are packed for Redis
 * and read back: a list whose positions are the names' numbers, to which
 * the state script only ever appends (README "Redis keys").
 *
 * The copy is read whole on every connection, before anything else is
 * read on it, and its tail whenever the state script reports the list has
 * grown (names it numbered for us or for another instance). A read brings
 * every name Redis had when it ran, and replies come in order, so a
 * customer read after a read of the table never numbers a name it lacks;
 * one read before may, and is read again after the tail (batch.c). Each
 * read appends only what lies beyond the copy, so reads may overlap.
 *
 * The copy is a prefix of Redis's list as long as that list only grows.
 * If it was deleted or lost meanwhile (FLUSHALL, a Redis that came back
 * without its last second comes back on a new connection anyway), the
 * state script refuses our next write (batch.c) and journeyd reconnects,
 * which reads the list afresh.
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

static void
on_names(struct journeyd *env, redisReply *r, void *arg)
{
	struct names	*n = env->names;
	size_t		 start = (size_t)(uintptr_t)arg, i;
	int		 had = name_table_count(n->table);

	n->reading--;
	if (r->type != REDIS_REPLY_ARRAY) {
		log_warnx("redis: cannot read the name table: %s",
		    r->type == REDIS_REPLY_ERROR ? r->str : "not a list");
		return;
	}
	/* what an earlier read brought already is skipped */
	for (i = (size_t)name_table_count(n->table) - start;
	    i < r->elements && name_table_count(n->table) < NAME_TABLE_MAX;
	    i++) {
		redisReply	*e = r->element[i];

		/* one it cannot hold still takes its number, nameless */
		if (e->type != REDIS_REPLY_STRING || name_table_add(n->table,
		    e->str, e->len) == -1)
			log_warnx("redis: name %zu of the name table is not a "
			    "name; states that use it are unreadable",
			    start + i);
	}
	/* more came meanwhile (a read that brought nothing new is the end:
	 * the list was cut short, and the next write will say so) */
	if (n->reading == 0 && name_table_count(n->table) > had &&
	    n->reported > name_table_count(n->table))
		names_read(env);
}

void
names_read(struct journeyd *env)
{
	struct names	*n = env->names;
	char		 key[CONFIG_PREFIX_MAX + 8], first[24];
	const char	*argv[] = { "LRANGE", key, first, "-1" };
	size_t		 argvlen[4];
	int		 count = name_table_count(n->table);

	if (count == NAME_TABLE_MAX)
		return;
	snprintf(key, sizeof(key), "%snames", env->conf->redis_prefix);
	snprintf(first, sizeof(first), "%d", count);
	for (int i = 0; i < 4; i++)
		argvlen[i] = strlen(argv[i]);
	if (redis_store_command(env, on_names, (void *)(uintptr_t)count, 4,
	    argv, argvlen) == 0)
		n->reading++;
}

void
names_redis_ready(struct journeyd *env)
{
	struct names	*n = env->names;

	/* replies of the lost connection never come */
	n->reading = 0;
	n->reported = 0;
	name_table_clear(n->table);
	names_read(env);
}

void
names_reported(struct journeyd *env, long long count)
{
	struct names	*n = env->names;

	if (count > n->reported)
		n->reported = count;
	if (n->reading == 0 && count > name_table_count(n->table))
		names_read(env);
}
