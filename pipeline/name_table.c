/*
 * name_table.c: names by number and numbers by name (name_table_*). An
 * open-addressing index of twice the table's capacity keeps a lookup to a
 * probe or two; nothing is ever removed but everything at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "name_table.h"

#define INDEX_SIZE	(2 * NAME_TABLE_MAX)	/* a power of two */

struct name_table {
	int	 count;
	char	*name[NAME_TABLE_MAX];
	short	 index[INDEX_SIZE];	/* number + 1; 0: empty */
};

static uint32_t
hash(const char *name)
{
	uint32_t	h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h ^ (h >> 15);
}

static unsigned int
slot_of(const char *name)
{
	return hash(name) & (INDEX_SIZE - 1);
}

struct name_table *
name_table_new(void)
{
	return calloc(1, sizeof(struct name_table));
}

void
name_table_clear(struct name_table *t)
{
	for (int i = 0; i < t->count; i++)
		free(t->name[i]);
	memset(t, 0, sizeof(*t));
}

void
name_table_free(struct name_table *t)
{
	if (t == NULL)
		return;
	name_table_clear(t);
	free(t);
}

int
name_table_can_hold(const char *name, size_t len)
{
	if (len == 0 || len > NAME_TABLE_NAME_MAX ||
	    !event_text_utf8(name, len))
		return 0;
	/* C1 controls too are refused in events now, but earlier builds
	 * stored them: their customers must stay readable */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return 0;
	return 1;
}

int
name_table_add(struct name_table *t, const char *name, size_t len)
{
	unsigned int	slot;
	char		*copy;

	if (t->count == NAME_TABLE_MAX)
		return -1;
	if (!name_table_can_hold(name, len) || (copy = malloc(len + 1)) ==
	    NULL) {
		t->name[t->count++] = NULL;	/* numbers stay positions */
		return -1;
	}
	memcpy(copy, name, len);
	copy[len] = '\0';
	/* a name added again keeps its first number for lookups */
	if (name_table_find(t, copy) == -1) {
		for (slot = slot_of(copy); t->index[slot] != 0;
		    slot = (slot + 1) & (INDEX_SIZE - 1))
			;
		t->index[slot] = (short)(t->count + 1);
	}
	t->name[t->count] = copy;
	return t->count++;
}

int
name_table_find(const struct name_table *t, const char *name)
{
	for (unsigned int slot = slot_of(name); t->index[slot] != 0;
	    slot = (slot + 1) & (INDEX_SIZE - 1))
		if (strcmp(t->name[t->index[slot] - 1], name) == 0)
			return t->index[slot] - 1;
	return -1;
}

const char *
name_table_name(const struct name_table *t, int id)
{
	return id >= 0 && id < t->count ? t->name[id] : NULL;
}

int
name_table_count(const struct name_table *t)
{
	return t->count;
}

uint32_t
name_table_tag(const struct name_table *t)
{
	uint32_t	tag;

	if (t->count == 0 || t->name[0] == NULL)
		return 0;
	tag = hash(t->name[0]);
	return tag != 0 ? tag : 1;
}
