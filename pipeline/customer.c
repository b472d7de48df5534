/*
 * customer.c: encoding of journey state into the fields of the customer's
 * Redis hash and back, and the form of the entries of its list of
 * changes. Times are stored as ISO-8601 text so that `redis-cli HGETALL`
 * reads naturally to an operator.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "customer.h"
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
	int64_t				 due = f->due = journey_deadline(m, s);
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

static int
field_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(name, want, len) == 0;
}

static int
decode_ids(struct journey_state *s, const char *v, size_t len)
{
	char		 buf[JOURNEY_IDS_MAX * 17 + 1], *tok, *save = NULL, *end;

	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	for (tok = strtok_r(buf, " ", &save); tok && s->nids < JOURNEY_IDS_MAX;
	    tok = strtok_r(NULL, " ", &save)) {
		errno = 0;
		s->recent_id[s->nids++] = strtoull(tok, &end, 16);
		if (errno || *end != '\0')
			return -1;
	}
	return 0;
}

/* Redis values are not NUL-terminated: numbers are parsed from a copy. */
#define NUMBER_MAX	40

static int
number_text(const char *v, size_t len, char buf[NUMBER_MAX])
{
	if (len == 0 || len >= NUMBER_MAX)
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	errno = 0;
	return 0;
}

static int
decode_int(const char *v, size_t len, int64_t *out)
{
	char	 buf[NUMBER_MAX], *end;

	if (number_text(v, len, buf) == -1)
		return -1;
	*out = strtoll(buf, &end, 10);
	return errno || *end != '\0' ? -1 : 0;
}

static int
decode_double(const char *v, size_t len, double *out)
{
	char	 buf[NUMBER_MAX], *end;

	if (number_text(v, len, buf) == -1)
		return -1;
	*out = strtod(buf, &end);
	return errno || *end != '\0' ? -1 : 0;
}

/* One PREFIXtype = count field; beyond max they are ignored. */
static int
decode_count(struct journey_action *a, int *n, int max, const char *type,
    size_t typelen, const char *v, size_t vl)
{
	int64_t	count;

	if (*n == max || typelen > EVENT_NAME_MAX)
		return 0;
	if (decode_int(v, vl, &count) == -1 || count < 0)
		return -1;
	memcpy(a[*n].type, type, typelen);
	a[*n].type[typelen] = '\0';
	a[*n].count = (uint64_t)count;
	(*n)++;
	return 0;
}

static int
decode_text(char *dst, size_t size, const char *v, size_t len)
{
	if (len >= size)
		return -1;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

int
customer_decode(const struct journey_model *m, struct journey_state *s,
    size_t n, const char **names, const size_t *namelen,
    const char **values, const size_t *valuelen)
{
	size_t	 plen = strlen(CUSTOMER_SOURCE_PREFIX);
	size_t	 alen = strlen(CUSTOMER_ACTION_PREFIX);
	size_t	 clen = strlen(CUSTOMER_CHANNEL_PREFIX);
	size_t	 elen = strlen(CUSTOMER_ENTERED_PREFIX);
	char	 stage[EVENT_NAME_MAX + 1];
	int64_t	 v;

	journey_state_init(s);
	for (size_t i = 0; i < n; i++) {
		const char	*name = names[i], *val = values[i];
		size_t		 nl = namelen[i], vl = valuelen[i];

		if (field_is(name, nl, "stage")) {
			if (vl > EVENT_NAME_MAX)
				return -1;
			memcpy(stage, val, vl);
			stage[vl] = '\0';
			s->stage = journey_model_stage_index(m, stage);
		} else if (field_is(name, nl, "stage_at")) {
			if (timestamp_parse_iso8601(val, vl, &s->stage_at_ms))
				return -1;
		} else if (field_is(name, nl, "first_seen")) {
			if (timestamp_parse_iso8601(val, vl,
			    &s->first_seen_ms))
				return -1;
		} else if (field_is(name, nl, "last_seen")) {
			if (timestamp_parse_iso8601(val, vl, &s->last_seen_ms))
				return -1;
		} else if (field_is(name, nl, "events")) {
			if (decode_int(val, vl, &v) == -1 || v < 0)
				return -1;
			s->events = (uint64_t)v;
		} else if (field_is(name, nl, "v")) {
			if (decode_int(val, vl, &v) == -1 || v < 0)
				return -1;
			s->version = (uint64_t)v;
		} else if (field_is(name, nl, "last_channel")) {
			if (decode_text(s->last_channel, sizeof(s->last_channel), val,
			    vl) == -1)
				return -1;
		} else if (field_is(name, nl, "n_other")) {
			if (decode_int(val, vl, &v) == -1 || v < 0)
				return -1;
			s->other_actions = (uint64_t)v;
		} else if (field_is(name, nl, "ids")) {
			if (decode_ids(s, val, vl) == -1)
				return -1;
		} else if (field_is(name, nl, "c_other")) {
			if (decode_int(val, vl, &v) == -1 || v < 0)
				return -1;
			s->other_channels = (uint64_t)v;
		} else if (field_is(name, nl, "segment")) {
			if (decode_text(s->segment, sizeof(s->segment), val,
			    vl) == -1)
				return -1;
		} else if (field_is(name, nl, "value")) {
			if (decode_double(val, vl, &s->value_total) == -1)
				return -1;
		} else if (field_is(name, nl, "sent_w")) {
			if (decode_double(val, vl, &s->risk.sentiment_w) == -1)
				return -1;
		} else if (field_is(name, nl, "sent_ws")) {
			if (decode_double(val, vl, &s->risk.sentiment_ws) == -1)
				return -1;
		} else if (field_is(name, nl, "pain")) {
			if (decode_double(val, vl, &s->risk.pain) == -1)
				return -1;
		} else if (field_is(name, nl, "eng")) {
			if (decode_double(val, vl, &s->risk.engagement) == -1)
				return -1;
		} else if (field_is(name, nl, "eng_peak")) {
			if (decode_double(val, vl, &s->risk.engagement_peak) ==
			    -1)
				return -1;
		} else if (field_is(name, nl, "risk")) {
			if (decode_double(val, vl, &s->risk.score) == -1)
				return -1;
		} else if (field_is(name, nl, "risk_level")) {
			if ((s->risk.level = churn_level_parse(val, vl)) == -1)
				return -1;
		} else if (field_is(name, nl, "risk_at")) {
			if (timestamp_parse_iso8601(val, vl, &s->risk_at_ms))
				return -1;
		} else if (field_is(name, nl, "churned")) {
			if (timestamp_parse_iso8601(val, vl,
			    &s->risk.churned_ms))
				return -1;
		} else if (field_is(name, nl, "mseg")) {
			if (decode_text(s->mseg, sizeof(s->mseg), val, vl) == -1)
				return -1;
		} else if (field_is(name, nl, "home")) {
			if (decode_text(s->home, sizeof(s->home), val, vl) == -1)
				return -1;
		} else if (nl > alen && memcmp(name, CUSTOMER_ACTION_PREFIX,
		    alen) == 0) {
			if (decode_count(s->action, &s->nactions,
			    JOURNEY_ACTIONS_MAX, name + alen, nl - alen, val,
			    vl) == -1)
				return -1;
		} else if (nl > clen && memcmp(name, CUSTOMER_CHANNEL_PREFIX,
		    clen) == 0) {
			if (decode_count(s->channel, &s->nchannels,
			    JOURNEY_CHANNELS_MAX, name + clen, nl - clen, val,
			    vl) == -1)
				return -1;
		} else if (nl > elen && memcmp(name, CUSTOMER_ENTERED_PREFIX,
		    elen) == 0) {
			int	k;

			if (decode_text(stage, sizeof(stage), name + elen,
			    nl - elen) == -1)
				return -1;
			/* a stage the model no longer has is forgotten */
			if ((k = journey_model_stage_index(m, stage)) !=
			    JOURNEY_NO_STAGE && timestamp_parse_iso8601(val, vl,
			    &s->entered_ms[k]))
				return -1;
		} else if (nl > plen && memcmp(name, CUSTOMER_SOURCE_PREFIX,
		    plen) == 0) {
			struct journey_source	*src;

			if (s->nsources == JOURNEY_SOURCES_MAX ||
			    nl - plen >= JOURNEY_SOURCE_MAX)
				continue;
			src = &s->source[s->nsources];
			if (decode_int(val, vl, &src->offset) == -1)
				return -1;
			memcpy(src->name, name + plen, nl - plen);
			src->name[nl - plen] = '\0';
			s->nsources++;
		}
	}
	/* the signals are kept as of the latest event */
	s->risk.at_ms = s->last_seen_ms;
	return 0;
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
