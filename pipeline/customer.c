/*
 * customer.c: the Redis form of a customer's journey state, packed into
 * one string and back; its readable form, field by field, for journeyctl
 * and the customer page; and the entries of its list of changes.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "customer.h"
#include "name_table.h"
#include "number.h"
#include "timestamp.h"

static void
add(struct customer_fields *f, const char *name, size_t namelen,
    const char *value, size_t valuelen)
{
	f->name[f->n] = name;
	f->namelen[f->n] = namelen;
	f->value[f->n] = value;
	f->valuelen[f->n] = valuelen;
	f->n++;
}

/* v in decimal at p, NUL-terminated; returns its length */
static size_t
put_u64(char *p, uint64_t v)
{
	size_t	n = number_format_u64(p, v);

	p[n] = '\0';
	return n;
}

static size_t
put_i64(char *p, int64_t v)
{
	size_t	n = number_format_i64(p, v);

	p[n] = '\0';
	return n;
}

/* a then b at p, NUL-terminated; returns the length */
static size_t
put_cat(char *p, const char *a, const char *b)
{
	size_t	alen = strlen(a), blen = strlen(b);

	memcpy(p, a, alen);
	memcpy(p + alen, b, blen + 1);
	return alen + blen;
}

/* PREFIXtype = count fields, and other when some did not fit */
static char *
add_counts(struct customer_fields *f, char *p, const char *prefix,
    const struct journey_action *a, int n, const char *other_name,
    uint64_t other)
{
	size_t	plen = strlen(prefix), len;

	for (int i = 0; i < n; i++) {
		len = strlen(a[i].type);
		memcpy(p, prefix, plen);
		memcpy(p + plen, a[i].type, len + 1);
		add(f, p, plen + len, NULL, 0);
		p += plen + len + 1;
		len = put_u64(p, a[i].count);
		f->value[f->n - 1] = p;
		f->valuelen[f->n - 1] = len;
		p += len + 1;
	}
	if (other > 0) {
		len = put_u64(p, other);
		add(f, other_name, strlen(other_name), p, len);
		p += len + 1;
	}
	return p;
}

/* a decayed sum, exactly: the state must read back as it was */
static char *
add_double(struct customer_fields *f, char *p, const char *name, double v)
{
	int	len = snprintf(p, 32, "%.17g", v);

	add(f, name, strlen(name), p, (size_t)len);
	return p + len + 1;
}

static char *
add_time(struct customer_fields *f, char *p, const char *name, int64_t ms)
{
	timestamp_format_iso8601(ms, p);
	add(f, name, strlen(name), p, TIMESTAMP_ISO_LEN - 1);
	return p + TIMESTAMP_ISO_LEN;
}

/* emotions, pain, engagement, risk; the map segment and deadline index */
static char *
encode_risk(const struct journey_model *m, const struct journey_state *s,
    struct customer_fields *f, char *p)
{
	const struct churn_signals	*r = &s->risk;
	const char			*level = churn_level_name(r->level);
	int64_t				 due = journey_deadline(m, s);
	int				 len;

	if (r->sentiment_w > 0) {
		p = add_double(f, p, "sent_w", r->sentiment_w);
		p = add_double(f, p, "sent_ws", r->sentiment_ws);
	}
	if (r->pain > 0)
		p = add_double(f, p, "pain", r->pain);
	if (r->engagement > 0) {
		p = add_double(f, p, "eng", r->engagement);
		p = add_double(f, p, "eng_peak", r->engagement_peak);
	}
	len = snprintf(p, 32, "%.3f", r->score);
	add(f, "risk", 4, p, (size_t)len);
	p += len + 1;
	add(f, "risk_level", 10, level, strlen(level));
	/* the reasons follow from the state and this time (journeyctl) */
	p = add_time(f, p, "risk_at", s->risk_at_ms);
	if (r->churned_ms != CHURN_NOT_CHURNED)
		p = add_time(f, p, "churned", r->churned_ms);
	if (due != CHURN_NEVER)
		p = add_time(f, p, "due", due);
	if (s->indexed_ms != 0)
		p = add_time(f, p, "indexed", s->indexed_ms);
	if (s->home[0] != '\0')
		add(f, "home", 4, s->home, strlen(s->home));
	if (s->mseg[0] != '\0')
		add(f, "mseg", 4, s->mseg, strlen(s->mseg));
	return p;
}

void
customer_encode(const struct journey_model *m, const struct journey_state *s,
    struct customer_fields *f)
{
	char	*p = f->buf;
	int	 len;

	f->n = 0;
	if (s->stage != JOURNEY_NO_STAGE)
		add(f, "stage", 5, m->stage[s->stage],
		    strlen(m->stage[s->stage]));
	else if (s->gone_stage[0] != '\0')
		add(f, "stage", 5, s->gone_stage, strlen(s->gone_stage));
	timestamp_format_iso8601(s->stage_at_ms, p);
	add(f, "stage_at", 8, p, TIMESTAMP_ISO_LEN - 1);
	p += TIMESTAMP_ISO_LEN;
	for (int i = 0; i < m->nstages; i++) {
		if (s->entered_ms[i] == 0)
			continue;
		len = (int)put_cat(p, CUSTOMER_ENTERED_PREFIX, m->stage[i]);
		add(f, p, (size_t)len, NULL, 0);
		p += len + 1;
		timestamp_format_iso8601(s->entered_ms[i], p);
		f->value[f->n - 1] = p;
		f->valuelen[f->n - 1] = TIMESTAMP_ISO_LEN - 1;
		p += TIMESTAMP_ISO_LEN;
	}
	timestamp_format_iso8601(s->first_seen_ms, p);
	add(f, "first_seen", 10, p, TIMESTAMP_ISO_LEN - 1);
	p += TIMESTAMP_ISO_LEN;
	timestamp_format_iso8601(s->last_seen_ms, p);
	add(f, "last_seen", 9, p, TIMESTAMP_ISO_LEN - 1);
	p += TIMESTAMP_ISO_LEN;
	len = (int)put_u64(p, s->events);
	add(f, "events", 6, p, (size_t)len);
	p += len + 1;
	len = (int)put_u64(p, s->version);
	add(f, "v", 1, p, (size_t)len);
	p += len + 1;
	add(f, "last_channel", 12, s->last_channel, strlen(s->last_channel));
	for (int i = 0; i < s->nsources; i++) {
		len = (int)put_cat(p, CUSTOMER_SOURCE_PREFIX,
		    s->source[i].name);
		add(f, p, (size_t)len, NULL, 0);
		p += len + 1;
		len = (int)put_i64(p, s->source[i].offset);
		f->value[f->n - 1] = p;
		f->valuelen[f->n - 1] = (size_t)len;
		p += len + 1;
	}
	p = add_counts(f, p, CUSTOMER_ACTION_PREFIX, s->action, s->nactions,
	    "n_other", s->other_actions);
	p = add_counts(f, p, CUSTOMER_CHANNEL_PREFIX, s->channel, s->nchannels,
	    "c_other", s->other_channels);
	if (s->segment[0] != '\0')
		add(f, "segment", 7, s->segment, strlen(s->segment));
	if (s->value_total != 0) {
		len = snprintf(p, 32, "%.17g", s->value_total);
		add(f, "value", 5, p, (size_t)len);
		p += len + 1;
	}
	p = encode_risk(m, s, f, p);
	if (s->nids > 0) {
		char	*ids = p;

		for (int i = 0; i < s->nids; i++) {
			if (i > 0)
				*p++ = ' ';
			/* 13 hex digits: the ids are 52-bit hashes */
			for (int d = 12; d >= 0; d--)
				*p++ = "0123456789abcdef"[(s->recent_id[i] >>
				    (4 * d)) & 0xf];
		}
		*p = '\0';
		add(f, "ids", 3, ids, (size_t)(p - ids));
	}
}

const char *
customer_field(const struct customer_fields *f, const char *name)
{
	for (int i = 0; i < f->n; i++)
		if (f->namelen[i] == strlen(name) &&
		    memcmp(f->name[i], name, f->namelen[i]) == 0)
			return f->value[i];
	return NULL;
}

/*
 * The packed form. Integers are LEB128 varints (signed ones zigzagged),
 * strings a varint length and the bytes, doubles their 8 bytes (exact, so
 * a state reads back as it was) or, when whole, a varint. Times but the
 * first are kept relative to first_seen: a few bytes each instead of six.
 * A name that is almost always one written before it is a reference to
 * that one, and any name may be a number in the name table (see
 * put_name); the tag of that table follows the format byte (4 bytes, 0
 * when the state numbers no name). Every byte counts three times: in
 * Redis's memory, in each write's bytes to the AOF, and so in how often
 * Redis rewrites the AOF. Formats 1 (before names were numbers or
 * references and sums varints) and 2 (before the deadline index entry's
 * time was kept) are still read: a customer keeps its state across the
 * upgrade.
 */
struct pack {
	unsigned char		*p, *end;
	int			 bad;		/* read past the end, a bound */
	int			 unknown;	/* a number not in names */
	const struct name_table	*names;		/* NULL: none numbered */
	struct name_table	*want;		/* names written out */
	uint32_t		 tag;		/* of the table numbered */
	int			 numbered;	/* a name was a number */
};

static void
put_byte(struct pack *k, unsigned char c)
{
	if (k->p == k->end) {
		k->bad = 1;
		return;
	}
	*k->p++ = c;
}

static void
put_uvar(struct pack *k, uint64_t v)
{
	while (v >= 0x80) {
		put_byte(k, (unsigned char)(v | 0x80));
		v >>= 7;
	}
	put_byte(k, (unsigned char)v);
}

static void
put_svar(struct pack *k, int64_t v)
{
	put_uvar(k, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void
put_bytes(struct pack *k, const void *v, size_t len)
{
	if ((size_t)(k->end - k->p) < len) {
		k->bad = 1;
		return;
	}
	memcpy(k->p, v, len);
	k->p += len;
}

static void
put_str(struct pack *k, const char *v)
{
	size_t	len = strlen(v);

	put_uvar(k, len);
	put_bytes(k, v, len);
}

static void
put_double(struct pack *k, double v)
{
	unsigned char	b[8];
	uint64_t	u;

	memcpy(&u, &v, sizeof(u));
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(u >> (8 * i));
	put_bytes(k, b, sizeof(b));
}

static uint64_t
get_uvar(struct pack *k)
{
	uint64_t	v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (k->p == k->end) {
			k->bad = 1;
			return 0;
		}
		v |= (uint64_t)(*k->p & 0x7f) << shift;
		if ((*k->p++ & 0x80) == 0)
			return v;
	}
	k->bad = 1;
	return 0;
}

static int64_t
get_svar(struct pack *k)
{
	uint64_t	u = get_uvar(k);

	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* a time kept relative to t0 (wrapping, not overflowing, on garbage) */
static int64_t
get_time(struct pack *k, int64_t t0)
{
	return (int64_t)((uint64_t)t0 + (uint64_t)get_svar(k));
}

static void
get_bytes(struct pack *k, void *v, size_t len)
{
	if ((size_t)(k->end - k->p) < len) {
		k->bad = 1;
		memset(v, 0, len);
		return;
	}
	memcpy(v, k->p, len);
	k->p += len;
}

/* a string of at most size - 1 bytes, NUL-terminated */
static void
get_str(struct pack *k, char *v, size_t size)
{
	uint64_t	len = get_uvar(k);

	if (len >= size) {
		k->bad = 1;
		len = 0;
	}
	get_bytes(k, v, (size_t)len);
	v[len] = '\0';
	/* every name journeyd writes came through event_parse or the
	 * config: one that could not is damage, and would reach terminals */
	if (len > 0 && !name_table_can_hold(v, (size_t)len))
		k->bad = 1;
}

static double
get_double(struct pack *k)
{
	unsigned char	b[8];
	uint64_t	u = 0;
	double		v;

	get_bytes(k, b, sizeof(b));
	for (int i = 0; i < 8; i++)
		u |= (uint64_t)b[i] << (8 * i);
	memcpy(&v, &u, sizeof(v));
	return v;
}

/*
 * A name (formats 2 and 3): REF_NONE for the empty name; REF_FIRST + i for
 * list[i], a name the state holds before it (the current stage is one of
 * the entered stages, home one of the sources, the last channel one of
 * the channels, the map segment the segment or "other"); REF_FIRST + n +
 * id for the name numbered id in the name table; else REF_INLINE and the
 * name, which then goes to want, to be numbered for the next writes.
 */
#define REF_NONE	0
#define REF_INLINE	1
#define REF_FIRST	2
/* the longest list: the entered stages */
#define REF_LIST_MAX	JOURNEY_STAGES_MAX
_Static_assert(JOURNEY_SOURCES_MAX <= REF_LIST_MAX &&
    JOURNEY_CHANNELS_MAX <= REF_LIST_MAX, "a list of names is too long");
_Static_assert(JOURNEY_SOURCE_MAX - 1 <= NAME_TABLE_NAME_MAX &&
    EVENT_NAME_MAX <= NAME_TABLE_NAME_MAX, "a name the table cannot hold");

static void
put_name(struct pack *k, const char *v, const char *const *list, int n)
{
	int	id;

	if (*v == '\0') {
		put_uvar(k, REF_NONE);
		return;
	}
	for (int i = 0; i < n; i++)
		if (strcmp(v, list[i]) == 0) {
			put_uvar(k, REF_FIRST + (uint64_t)i);
			return;
		}
	if (k->names != NULL && (id = name_table_find(k->names, v)) != -1) {
		put_uvar(k, REF_FIRST + (uint64_t)n + (uint64_t)id);
		k->numbered = 1;
		return;
	}
	if (k->want != NULL && name_table_find(k->want, v) == -1)
		(void)name_table_add(k->want, v, strlen(v));
	put_uvar(k, REF_INLINE);
	put_str(k, v);
}

static void
get_name(struct pack *k, char *v, size_t size, const char *const *list,
    int n)
{
	uint64_t	 ref = get_uvar(k);
	const char	*name;

	if (ref == REF_INLINE) {
		get_str(k, v, size);
		return;
	}
	*v = '\0';
	if (ref == REF_NONE || k->bad)
		return;
	ref -= REF_FIRST;
	if (ref < (uint64_t)n)
		name = list[ref];
	else if (k->tag == 0) {
		k->bad = 1;		/* packed without a table */
		return;
	} else if (k->names == NULL || ref - (uint64_t)n >=
	    (uint64_t)name_table_count(k->names)) {
		/* numbered after names was read: read on, to tell */
		k->unknown = 1;
		return;
	} else
		name = name_table_name(k->names, (int)(ref - (uint64_t)n));
	if (name == NULL || strlen(name) >= size) {
		k->bad = 1;
		return;
	}
	strcpy(v, name);
}

/*
 * The doubles in a fixed order; a mask bit says which are not zero, and a
 * second mask which of those are whole numbers written as varints (counts
 * and peaks often are, and the first events' sums).
 */
#define SUMS	7
#define CHURNED	(1U << SUMS)	/* mask bit: churned_ms is kept */
/* mask bit (format 3): indexed_ms is kept */
#define INDEXED	(1U << (SUMS + 1))
#define WHOLE_MAX	9007199254740992.0	/* 2^53: all whole below */

static const size_t sum_offset[SUMS] = {
	offsetof(struct journey_state, risk.sentiment_w),
	offsetof(struct journey_state, risk.sentiment_ws),
	offsetof(struct journey_state, risk.pain),
	offsetof(struct journey_state, risk.engagement),
	offsetof(struct journey_state, risk.engagement_peak),
	offsetof(struct journey_state, risk.score),
	offsetof(struct journey_state, value_total),
};

static void
put_counts(struct pack *k, const struct journey_action *a, int n,
    uint64_t other)
{
	put_uvar(k, (uint64_t)n);
	for (int i = 0; i < n; i++) {
		put_name(k, a[i].type, NULL, 0);
		put_uvar(k, a[i].count);
	}
	put_uvar(k, other);
}

/*
 * A partition, an event type or a channel the state counts: never empty
 * (unless numbered by a newer table, which tells).
 */
static void
get_counted_name(struct pack *k, int format, char *v, size_t size)
{
	if (format == 1)
		get_str(k, v, size);
	else
		get_name(k, v, size, NULL, 0);
	if (*v == '\0' && !k->unknown)
		k->bad = 1;
}

static void
get_counts(struct pack *k, int format, struct journey_action *a, int *n,
    int max, uint64_t *other)
{
	uint64_t	count = get_uvar(k);

	if (count > (uint64_t)max) {
		k->bad = 1;
		return;
	}
	for (*n = 0; *n < (int)count && !k->bad; (*n)++) {
		get_counted_name(k, format, a[*n].type, sizeof(a[*n].type));
		a[*n].count = get_uvar(k);
		/* each name once (its readable field is one), when known */
		for (int i = 0; i < *n && !k->unknown; i++)
			if (strcmp(a[i].type, a[*n].type) == 0)
				k->bad = 1;
	}
	*other = get_uvar(k);
}

void
customer_version_bytes(uint64_t version,
    unsigned char out[CUSTOMER_VERSION_LEN])
{
	for (int i = 0; i < CUSTOMER_VERSION_LEN; i++)
		out[i] = (unsigned char)(version >> (8 * (CUSTOMER_VERSION_LEN -
		    1 - i)));
}

static void
put_tag(struct pack *k, uint32_t tag)
{
	for (int i = 3; i >= 0; i--)
		put_byte(k, (unsigned char)(tag >> (8 * i)));
}

static int
is_whole(double v)
{
	return v > 0 && v < WHOLE_MAX && v == (double)(uint64_t)v;
}

size_t
customer_pack(const struct journey_model *m, const struct name_table *names,
    struct name_table *want, const struct journey_state *s,
    unsigned char *buf, size_t size)
{
	struct pack	 k = { buf, buf + size, 0, 0, names, want,
			    names != NULL ? name_table_tag(names) : 0, 0 };
	int64_t		 t0 = s->first_seen_ms;
	double		 sums[SUMS];
	unsigned char	 version[CUSTOMER_VERSION_LEN];
	const char	*list[REF_LIST_MAX];
	unsigned int	 mask = 0, whole = 0;
	int		 n = 0;
	size_t		 len;

	customer_version_bytes(s->version, version);
	put_bytes(&k, version, sizeof(version));
	put_byte(&k, CUSTOMER_FORMAT);
	if (k.tag == 0)
		k.names = NULL;		/* an empty table numbers nothing */
	put_tag(&k, k.tag);
	put_svar(&k, t0);
	put_svar(&k, s->stage_at_ms - t0);
	put_svar(&k, s->last_seen_ms - t0);
	put_svar(&k, s->risk_at_ms - t0);
	for (int i = 0; i < m->nstages; i++)
		if (s->entered_ms[i] != 0)
			list[n++] = m->stage[i];
	put_uvar(&k, (uint64_t)n);
	for (int i = 0; i < m->nstages; i++)
		if (s->entered_ms[i] != 0) {
			put_name(&k, m->stage[i], NULL, 0);
			put_svar(&k, s->entered_ms[i] - t0);
		}
	put_name(&k, s->stage == JOURNEY_NO_STAGE ? s->gone_stage :
	    m->stage[s->stage], list, n);
	put_uvar(&k, s->events);
	put_name(&k, s->segment, NULL, 0);
	list[0] = s->segment;
	list[1] = "other";
	put_name(&k, s->mseg, list, 2);
	put_uvar(&k, (uint64_t)s->nsources);
	for (int i = 0; i < s->nsources; i++) {
		put_name(&k, s->source[i].name, NULL, 0);
		put_svar(&k, s->source[i].offset);
		list[i] = s->source[i].name;
	}
	put_name(&k, s->home, list, s->nsources);
	put_counts(&k, s->action, s->nactions, s->other_actions);
	put_counts(&k, s->channel, s->nchannels, s->other_channels);
	for (int i = 0; i < s->nchannels; i++)
		list[i] = s->channel[i].type;
	put_name(&k, s->last_channel, list, s->nchannels);
	put_uvar(&k, (uint64_t)s->nids);
	for (int i = 0; i < s->nids; i++)
		put_uvar(&k, s->recent_id[i]);
	put_uvar(&k, (uint64_t)s->risk.level);
	for (int i = 0; i < SUMS; i++) {
		memcpy(&sums[i], (const char *)s + sum_offset[i],
		    sizeof(sums[i]));
		if (sums[i] != 0)
			mask |= 1U << i;
		if (is_whole(sums[i]))
			whole |= 1U << i;
	}
	if (s->risk.churned_ms != CHURN_NOT_CHURNED)
		mask |= CHURNED;
	if (s->indexed_ms != 0)
		mask |= INDEXED;
	put_uvar(&k, mask);
	put_uvar(&k, whole);
	for (int i = 0; i < SUMS; i++)
		if (whole & (1U << i))
			put_uvar(&k, (uint64_t)sums[i]);
		else if (mask & (1U << i))
			put_double(&k, sums[i]);
	if (mask & CHURNED)
		put_svar(&k, s->risk.churned_ms - t0);
	if (mask & INDEXED)
		put_svar(&k, s->indexed_ms - t0);
	if (k.bad)
		return 0;
	len = (size_t)(k.p - buf);
	/* numbering no name, it is readable whatever becomes of the table */
	if (!k.numbered) {
		k.p = buf + CUSTOMER_VERSION_LEN + 1;
		put_tag(&k, 0);
	}
	return len;
}

static int
time_valid(int64_t ms)
{
	return ms >= 0 && ms <= TIMESTAMP_MAX_MS;
}

/*
 * What no state journeyd writes holds, though it unpacks (another
 * program's bytes, or damaged ones): the rules do arithmetic on the times
 * that must not overflow, a NaN sum would make a NaN score (no JSON number
 * in an alert), and the stored score is shown with 3 decimals. A score is
 * a weighted mean of numbers in [0, 1]: rounding may take it a hair over.
 */
static int
values_valid(const struct journey_state *s)
{
	double	sums[SUMS];

	if (!time_valid(s->first_seen_ms) || !time_valid(s->stage_at_ms) ||
	    !time_valid(s->last_seen_ms) || !time_valid(s->risk_at_ms) ||
	    (s->risk.churned_ms != CHURN_NOT_CHURNED &&
	    !time_valid(s->risk.churned_ms)) || s->indexed_ms < 0)
		return 0;
	for (int i = 0; i < JOURNEY_STAGES_MAX; i++)
		if (!time_valid(s->entered_ms[i]))
			return 0;
	for (int i = 0; i < SUMS; i++) {
		memcpy(&sums[i], (const char *)s + sum_offset[i],
		    sizeof(sums[i]));
		if (!isfinite(sums[i]))
			return 0;
	}
	return s->risk.score >= 0 && s->risk.score <= 1 + 1e-9;
}

/*
 * Format 1 wrote every name out, and the stage, the last channel and home
 * before the lists they now refer to.
 */
int
customer_unpack(const struct journey_model *m, const struct name_table *names,
    struct journey_state *s, const void *buf, size_t len)
{
	struct pack	 k = { (unsigned char *)buf, (unsigned char *)buf + len,
			    0, 0, names, NULL, 0, 0 };
	char		 stage[EVENT_NAME_MAX + 1];
	char		 entered[JOURNEY_STAGES_MAX][EVENT_NAME_MAX + 1];
	const char	*list[REF_LIST_MAX];
	unsigned char	 head[CUSTOMER_VERSION_LEN + 1];
	uint64_t	 n, mask, whole = 0;
	int64_t		 t0;
	int		 format;

	journey_state_init(s);
	get_bytes(&k, head, sizeof(head));
	format = head[CUSTOMER_VERSION_LEN];
	if (k.bad || format < 1 || format > CUSTOMER_FORMAT)
		return -1;
	for (int i = 0; i < CUSTOMER_VERSION_LEN; i++)
		s->version = s->version << 8 | head[i];
	if (format == 1)
		get_str(&k, stage, sizeof(stage));
	else {
		get_bytes(&k, head, CUSTOMER_TAG_LEN);
		for (int i = 0; i < CUSTOMER_TAG_LEN; i++)
			k.tag = k.tag << 8 | head[i];
		/* numbered by another table (a newer one than names, or
		 * one gone): its names are not these */
		if (k.tag != 0 && names != NULL && name_table_tag(names) !=
		    k.tag)
			return CUSTOMER_NAME_UNKNOWN;
	}
	t0 = s->first_seen_ms = get_svar(&k);
	s->stage_at_ms = get_time(&k, t0);
	s->last_seen_ms = get_time(&k, t0);
	s->risk_at_ms = get_time(&k, t0);
	if ((n = get_uvar(&k)) > JOURNEY_STAGES_MAX)
		return -1;
	for (int e = 0; e < (int)n && !k.bad; e++) {
		int64_t	at;
		int	i;

		if (format == 1)
			get_str(&k, entered[e], sizeof(entered[e]));
		else
			get_name(&k, entered[e], sizeof(entered[e]), NULL, 0);
		list[e] = entered[e];
		at = get_time(&k, t0);
		/* a stage the model no longer has is forgotten */
		if ((i = journey_model_stage_index(m, entered[e])) !=
		    JOURNEY_NO_STAGE)
			s->entered_ms[i] = at;
	}
	if (format != 1)
		get_name(&k, stage, sizeof(stage), list, k.bad ? 0 : (int)n);
	s->stage = journey_model_stage_index(m, stage);
	s->events = get_uvar(&k);
	if (format == 1) {
		get_str(&k, s->last_channel, sizeof(s->last_channel));
		get_str(&k, s->segment, sizeof(s->segment));
		get_str(&k, s->mseg, sizeof(s->mseg));
		get_str(&k, s->home, sizeof(s->home));
	} else {
		get_name(&k, s->segment, sizeof(s->segment), NULL, 0);
		list[0] = s->segment;
		list[1] = "other";
		get_name(&k, s->mseg, sizeof(s->mseg), list, 2);
	}
	if ((n = get_uvar(&k)) > JOURNEY_SOURCES_MAX)
		return -1;
	for (s->nsources = 0; s->nsources < (int)n && !k.bad; s->nsources++) {
		struct journey_source	*src = &s->source[s->nsources];

		get_counted_name(&k, format, src->name, sizeof(src->name));
		src->offset = get_svar(&k);
		list[s->nsources] = src->name;
		for (int i = 0; i < s->nsources && !k.unknown; i++)
			if (strcmp(s->source[i].name, src->name) == 0)
				k.bad = 1;
	}
	if (format != 1)
		get_name(&k, s->home, sizeof(s->home), list, s->nsources);
	get_counts(&k, format, s->action, &s->nactions, JOURNEY_ACTIONS_MAX,
	    &s->other_actions);
	get_counts(&k, format, s->channel, &s->nchannels,
	    JOURNEY_CHANNELS_MAX, &s->other_channels);
	if (format != 1) {
		for (int i = 0; i < s->nchannels; i++)
			list[i] = s->channel[i].type;
		get_name(&k, s->last_channel, sizeof(s->last_channel), list,
		    k.bad ? 0 : s->nchannels);
	}
	if ((n = get_uvar(&k)) > JOURNEY_IDS_MAX)
		return -1;
	for (s->nids = 0; s->nids < (int)n; s->nids++)
		if ((s->recent_id[s->nids] = get_uvar(&k)) >
		    JOURNEY_ID_HASH_MASK)
			return -1;	/* no event's id hashes to it */
	if ((n = get_uvar(&k)) >= CHURN_LEVELS)
		return -1;
	s->risk.level = (int)n;
	if ((mask = get_uvar(&k)) & ~(uint64_t)((format >= 3 ? INDEXED : 0) |
	    CHURNED | (CHURNED - 1)))
		return -1;
	/* whole bits are of sums that are there */
	if (format != 1 && ((whole = get_uvar(&k)) & ~(mask & (CHURNED - 1))) !=
	    0)
		return -1;
	for (int i = 0; i < SUMS; i++) {
		double	v;

		if (whole & (1U << i))
			v = (double)get_uvar(&k);
		else if (mask & (1U << i))
			v = get_double(&k);
		else
			continue;
		memcpy((char *)s + sum_offset[i], &v, sizeof(v));
	}
	if (mask & CHURNED)
		s->risk.churned_ms = get_time(&k, t0);
	if (mask & INDEXED)
		s->indexed_ms = get_time(&k, t0);
	if (s->stage == JOURNEY_NO_STAGE && stage[0] != '\0') {
		/*
		 * A stage the model no longer has: the timers put its index
		 * entry off to the end of time, so the next write must place
		 * one again.
		 */
		memcpy(s->gone_stage, stage, sizeof(s->gone_stage));
		s->indexed_ms = 0;
	}
	/* the signals are kept as of the latest event */
	s->risk.at_ms = s->last_seen_ms;
	if (k.bad || k.p != k.end || !values_valid(s))
		return -1;
	return k.unknown ? CUSTOMER_NAME_UNKNOWN : 0;
}

const char *const customer_change_field[CUSTOMER_CHANGE_FIELDS] = {
	"kind", "from", "to", "at", "event", "event_id", "alert_id", "detail",
};

int
customer_change_split(const char *entry, size_t len,
    const char *field[CUSTOMER_CHANGE_FIELDS],
    size_t fieldlen[CUSTOMER_CHANGE_FIELDS])
{
	const char	*end = entry + len, *tab;
	int		 n = 0;

	for (;;) {
		if ((tab = memchr(entry, '\t', (size_t)(end - entry))) == NULL)
			tab = end;
		if (n == CUSTOMER_CHANGE_FIELDS)
			return -1;
		field[n] = entry;
		fieldlen[n++] = (size_t)(tab - entry);
		if (tab == end)
			break;
		entry = tab + 1;
	}
	return n == CUSTOMER_CHANGE_FIELDS ? 0 : -1;
}

size_t
customer_key(char *buf, size_t size, const char *prefix, const char *id,
    const char *suffix)
{
	size_t	plen = strlen(prefix), idlen = strlen(id);
	size_t	slen = strlen(suffix), len = plen + idlen + slen + 2;

	if (len >= size)
		return 0;
	memcpy(buf, prefix, plen);
	buf[plen] = '{';
	memcpy(buf + plen + 1, id, idlen);
	buf[plen + 1 + idlen] = '}';
	memcpy(buf + plen + idlen + 2, suffix, slen + 1);
	return len;
}
