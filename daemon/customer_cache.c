/*
 * customer_cache.c: the customers that in-flight batches have loaded or
 * changed, keyed by customer id. A later batch reuses the in-memory state
 * (newer than Redis until the earlier batch's write lands) instead of
 * loading it again. Entries live exactly as long as a batch refers to them,
 * so memory follows in-flight work, not the number of customers. It also
 * reads a customer's state out of its HGETALL reply, for whoever loads one.
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
	 * Entries let go, for the next customers: a batch brings thousands
	 * of new ones, and fresh memory for each (3 KB of state) costs page
	 * faults every time. As many as were ever in use at once: bounded,
	 * like in-flight work.
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
			free(e->stored);
			free(e);
		}
	for (e = c->spare; e; e = next) {
		next = e->next;
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
	struct customer_entry	*e;

	for (e = c->bucket[h]; e; e = e->next)
		if (e->idlen == len && memcmp(e->id, id, len) == 0) {
			e->refs++;
			*created = 0;
			return e;
		}
	if (len > EVENT_CUSTOMER_MAX)
		return NULL;
	if ((e = c->spare) != NULL)
		c->spare = e->next;
	else if ((e = malloc(ENTRY_SIZE)) == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	memcpy(e->id, id, len + 1);
	e->idlen = len;
	e->refs = 1;
	journey_state_init(&e->state);
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
	free(e->stored);
#ifdef JOURNEYD_SANITIZE
	/* freed after all, so that AddressSanitizer sees a use after this */
	free(e);
#else
	e->next = c->spare;
	c->spare = e;
#endif
}

void
customer_cache_remember(struct customer_entry *e, size_t n,
    const char *const *name, const size_t *namelen,
    const char *const *value, const size_t *valuelen)
{
	struct stored_hash	*sh;
	size_t			 bytes = 0;
	char			*p;

	for (size_t i = 0; i < n; i++)
		bytes += namelen[i] + valuelen[i];
	if ((sh = malloc(sizeof(*sh) + n * (2 * sizeof(char *) +
	    2 * sizeof(size_t)) + bytes)) == NULL)
		fatal("stored hash");
	sh->n = n;
	sh->name = (const char **)(sh + 1);
	sh->value = sh->name + n;
	sh->namelen = (size_t *)(sh->value + n);
	sh->valuelen = sh->namelen + n;
	p = (char *)(sh->valuelen + n);
	for (size_t i = 0; i < n; i++) {
		memcpy(p, name[i], namelen[i]);
		sh->name[i] = p;
		sh->namelen[i] = namelen[i];
		p += namelen[i];
		memcpy(p, value[i], valuelen[i]);
		sh->value[i] = p;
		sh->valuelen[i] = valuelen[i];
		p += valuelen[i];
	}
	free(e->stored);
	e->stored = sh;
}

int
customer_cache_decode(const struct journey_model *m, const redisReply *r,
    struct journey_state *s, struct customer_entry *remember, const char **why)
{
	const char	*names[CUSTOMER_HGETALL_MAX];
	const char	*values[CUSTOMER_HGETALL_MAX];
	size_t		 namelen[CUSTOMER_HGETALL_MAX] = { 0 };
	size_t		 valuelen[CUSTOMER_HGETALL_MAX] = { 0 };
	size_t		 n = 0;

	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0 ||
	    r->elements / 2 > CUSTOMER_HGETALL_MAX) {
		*why = r->type == REDIS_REPLY_ERROR ? r->str : "not a hash";
		return -1;
	}
	for (size_t i = 0; i + 1 < r->elements; i += 2, n++) {
		names[n] = r->element[i]->str;
		namelen[n] = r->element[i]->len;
		values[n] = r->element[i + 1]->str;
		valuelen[n] = r->element[i + 1]->len;
	}
	if (customer_decode(m, s, n, names, namelen, values, valuelen) == -1) {
		*why = "malformed field";
		return -1;
	}
	if (remember != NULL && n > 0)
		customer_cache_remember(remember, n, names, namelen, values,
		    valuelen);
	return 0;
}
