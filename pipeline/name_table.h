/*
 * name_table.h: the names a packed customer state refers to by number
 * (stages, event types, channels, segments, partitions), numbered in the
 * order they were added; the same list as Redis keeps (README "Redis
 * keys", journey:names).
 */
#ifndef JOURNEYD_NAME_TABLE_H
#define JOURNEYD_NAME_TABLE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Names beyond this many are written out in full: a stream of made-up
 * event types must not grow the table, or each journeyd's copy of it,
 * without end.
 */
#define NAME_TABLE_MAX		4096
#define NAME_TABLE_NAME_MAX	160	/* bytes of the longest name */

struct name_table;

struct name_table *name_table_new(void);
void	name_table_free(struct name_table *t);
/* Forgets every name. */
void	name_table_clear(struct name_table *t);
/*
 * Adds name as the next number, even if it is there already (numbers are
 * positions in Redis's list); returns its number, or -1 when the table is
 * full. A name it cannot hold (empty, too long, not UTF-8 or holding an
 * ASCII control character or NUL: no name journeyd writes; or no memory)
 * still takes its number, with no name, and -1 is returned.
 */
int	name_table_add(struct name_table *t, const char *name, size_t len);
/* Whether name (len bytes) is one the table can hold, or a packed state:
 * not empty, not too long, UTF-8 without ASCII control characters. */
int	name_table_can_hold(const char *name, size_t len);
/* The number of name (its first), or -1. */
int	name_table_find(const struct name_table *t, const char *name);
/* The name numbered id, or NULL (none, or a nameless number). */
const char *name_table_name(const struct name_table *t, int id);
int	name_table_count(const struct name_table *t);
/*
 * Which table this is: a hash of its first name, which the state script
 * makes unique when it starts a table (never 0), or 0 when it is empty. A
 * packed state keeps the tag of the table it numbers names of, so that a
 * table deleted and started again cannot lend them other names.
 */
uint32_t name_table_tag(const struct name_table *t);

#endif
