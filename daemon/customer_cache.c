/*
 * customer_cache.c: the customers that in-flight batches have loaded or
 * changed, keyed by customer id. A later batch reuses the in-memory state
 * (newer than Redis until the earlier batch's write lands) instead of
 * loading it again. Entries live exactly as long as a batch refers to them,
 * so memory follows in-flight work, not the number of customers; each
 * keeps its state packed, as Redis does. It also reads a customer's state
 * out of the reply to its GET, for whoever loads one.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "customer.h"
#include "journeyd.h"
#include "log.h"

struct customer_cache {
	struct customer_entry	**bucket;
	size_t			  nbuckets;	/* power of two */
	size_t			  count;
	/*
	 * Entries let go, with the room of their packed state, for the next
	 * customers: a batch brings thousands of new ones, and fresh memory
	 * for each costs page faults every time. As many as were ever in use
	 * at once: bounded, like in-flight work.
	 */
	struct customer_entry	 *spare;
};

/* every entry has room for the longest id, so that any can be reused */
#define ENTRY_SIZE	(sizeof(struct customer_entry) + EVENT_CUSTOMER_MAX + 1)

static uint64_t
hash_id(const char *s, size_t len)
{
	uint64_t	h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * UINT64_C(0x100000001b3);
	return h ^ (h >> 29);
}

struct customer_cache *
customer_cache_new(void)
{
	struct customer_cache	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->nbuckets = 1024;
	if ((c->bucket = calloc(c->nbuckets, sizeof(*c->bucket))) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
customer_cache_free(struct customer_cache *c)
{
	struct customer_entry	*e, *next;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nbuckets; i++)
		for (e = c->bucket[i]; e; e = next) {
			next = e->next;
			free(e->packed);
			free(e);
		}
	for (e = c->spare; e; e = next) {
		next = e->next;
		free(e->packed);
		free(e);
	}
	free(c->bucket);
	free(c);
}

static void
grow(struct customer_cache *c)
{
	size_t			  n = c->nbuckets * 2;
	struct customer_entry	**b, *e, *next;

	if ((b = calloc(n, sizeof(*b))) == NULL)
		return;		/* longer chains, still correct */
	for (size_t i = 0; i < c->nbuckets; i++)
		for (e = c->bucket[i]; e; e = next) {
			size_t	h = hash_id(e->id, e->idlen) & (n - 1);

			next = e->next;
			e->next = b[h];
			b[h] = e;
		}
	free(c->bucket);
	c->bucket = b;
	c->nbuckets = n;
}

struct customer_entry *
customer_cache_ref(struct customer_cache *c, const char *id, int *created)
{
	size_t			 len = strlen(id);
	size_t			 h = hash_id(id, len) & (c->nbuckets - 1);
	size_t			 cap = 0;
	unsigned char		*packed = NULL;
	struct customer_entry	*e;

	for (e = c->bucket[h]; e; e = e->next)
		if (e->idlen == len && memcmp(e->id, id, len) == 0) {
			e->refs++;
			*created = 0;
			return e;
		}
	if (len > EVENT_CUSTOMER_MAX)
		return NULL;
	if ((e = c->spare) != NULL) {
		c->spare = e->next;
		packed = e->packed;	/* its room is reused too */
		cap = e->packed_cap;
	} else if ((e = malloc(ENTRY_SIZE)) == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->packed = packed;
	e->packed_cap = cap;
	memcpy(e->id, id, len + 1);
	e->idlen = len;
	e->refs = 1;
	e->next = c->bucket[h];
	c->bucket[h] = e;
	*created = 1;
	if (++c->count > c->nbuckets)
		grow(c);
	return e;
}

void
customer_cache_unref(struct customer_cache *c, struct customer_entry *e)
{
	struct customer_entry	**pp;

	if (--e->refs > 0)
		return;
	pp = &c->bucket[hash_id(e->id, e->idlen) & (c->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	c->count--;
#ifdef JOURNEYD_SANITIZE
	/* freed after all, so that AddressSanitizer sees a use after this */
	free(e->packed);
	free(e);
#else
	e->next = c->spare;
	c->spare = e;
#endif
}

int
customer_cache_decode(const struct journey_model *m,
    const struct name_table *names, const redisReply *r,
    struct journey_state *s, const char **why)
{
	int	rc;

	if (r->type == REDIS_REPLY_NIL) {
		journey_state_init(s);
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING) {
		*why = r->type == REDIS_REPLY_ERROR ? r->str : "not a string";
		return -1;
	}
	if ((rc = customer_unpack(m, names, s, r->str, r->len)) != 0) {
		*why = rc == CUSTOMER_NAME_UNKNOWN ? "names a name not read "
		    "yet" : "not a packed journey state";
		return rc;
	}
	return 0;
}

static void
keep_packed(struct customer_entry *e, const void *packed, size_t len)
{
	if (len > e->packed_cap) {
		free(e->packed);
		if ((e->packed = malloc(len)) == NULL)
			fatal("customer cache");
		e->packed_cap = len;
	}
	if (len > 0)
		memcpy(e->packed, packed, len);
	e->packed_len = len;
}

/*
 * In memory a state is packed without numbered names: what it holds then
 * does not depend on the name table, which a reconnection may replace.
 */
int
customer_cache_load(const struct journey_model *m,
    const struct name_table *names, struct customer_entry *e,
    const redisReply *r, const char **why)
{
	struct journey_state	s;
	int			rc;

	if ((rc = customer_cache_decode(m, names, r, &s, why)) != 0)
		return rc;
	if (r->type == REDIS_REPLY_NIL)
		keep_packed(e, NULL, 0);
	else
		customer_cache_put(m, e, &s);
	return 0;
}

void
customer_cache_get(const struct journey_model *m,
    const struct customer_entry *e, struct journey_state *s)
{
	if (e->packed_len == 0)
		journey_state_init(s);
	else if (customer_unpack(m, NULL, s, e->packed, e->packed_len) != 0)
		fatalx("customer %s: its packed state does not unpack", e->id);
}

void
customer_cache_put(const struct journey_model *m, struct customer_entry *e,
    const struct journey_state *s)
{
	unsigned char	buf[CUSTOMER_PACKED_MAX];
	size_t		len;

	if ((len = customer_pack(m, NULL, NULL, s, buf, sizeof(buf))) == 0)
		fatalx("customer %s: state too large to pack", e->id);
	keep_packed(e, buf, len);
}
