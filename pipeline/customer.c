/*
 * customer.c: encoding of journey state into the fields of the customer's
 * Redis hash and back. Times are stored as ISO-8601 text so that
 * `redis-cli HGETALL` reads naturally to an operator.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "customer.h"
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
	timestamp_format_iso8601(s->first_seen_ms, p);
	add(f, "first_seen", 10, p, TIMESTAMP_ISO_LEN - 1);
	p += TIMESTAMP_ISO_LEN;
	timestamp_format_iso8601(s->last_seen_ms, p);
	add(f, "last_seen", 9, p, TIMESTAMP_ISO_LEN - 1);
	p += TIMESTAMP_ISO_LEN;
	len = snprintf(p, 24, "%" PRIu64, s->events);
	add(f, "events", 6, p, (size_t)len);
	p += len + 1;
	add(f, "last_channel", 12, s->last_channel, strlen(s->last_channel));
	for (int i = 0; i < s->nsources; i++) {
		len = snprintf(p, JOURNEY_SOURCE_MAX + 8, "%s%s",
		    CUSTOMER_SOURCE_PREFIX, s->source[i].name);
		add(f, p, (size_t)len, NULL, 0);
		p += len + 1;
		len = snprintf(p, 24, "%" PRId64, s->source[i].offset);
		f->value[f->n - 1] = p;
		f->valuelen[f->n - 1] = (size_t)len;
		p += len + 1;
	}
	for (int i = 0; i < s->nactions; i++) {
		len = snprintf(p, EVENT_NAME_MAX + 3, "%s%s",
		    CUSTOMER_ACTION_PREFIX, s->action[i].type);
		add(f, p, (size_t)len, NULL, 0);
		p += len + 1;
		len = snprintf(p, 24, "%" PRIu64, s->action[i].count);
		f->value[f->n - 1] = p;
		f->valuelen[f->n - 1] = (size_t)len;
		p += len + 1;
	}
	if (s->other_actions > 0) {
		len = snprintf(p, 24, "%" PRIu64, s->other_actions);
		add(f, "n_other", 7, p, (size_t)len);
		p += len + 1;
	}
	if (s->nids > 0) {
		char	*ids = p;

		for (int i = 0; i < s->nids; i++)
			p += snprintf(p, 18, "%s%016" PRIx64, i ? " " : "",
			    s->recent_id[i]);
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

static int
decode_int(const char *v, size_t len, int64_t *out)
{
	char	 buf[32], *end;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return errno || *end != '\0' ? -1 : 0;
}

int
customer_decode(const struct journey_model *m, struct journey_state *s,
    size_t n, const char **names, const size_t *namelen,
    const char **values, const size_t *valuelen)
{
	size_t	 plen = strlen(CUSTOMER_SOURCE_PREFIX);
	size_t	 alen = strlen(CUSTOMER_ACTION_PREFIX);
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
		} else if (field_is(name, nl, "last_channel")) {
			if (vl > EVENT_NAME_MAX)
				return -1;
			memcpy(s->last_channel, val, vl);
			s->last_channel[vl] = '\0';
		} else if (field_is(name, nl, "n_other")) {
			if (decode_int(val, vl, &v) == -1 || v < 0)
				return -1;
			s->other_actions = (uint64_t)v;
		} else if (field_is(name, nl, "ids")) {
			if (decode_ids(s, val, vl) == -1)
				return -1;
		} else if (nl > alen && memcmp(name, CUSTOMER_ACTION_PREFIX,
		    alen) == 0) {
			struct journey_action	*a;

			if (s->nactions == JOURNEY_ACTIONS_MAX ||
			    nl - alen > EVENT_NAME_MAX)
				continue;
			a = &s->action[s->nactions];
			if (decode_int(val, vl, &v) == -1 || v < 0)
				return -1;
			a->count = (uint64_t)v;
			memcpy(a->type, name + alen, nl - alen);
			a->type[nl - alen] = '\0';
			s->nactions++;
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
	return 0;
}
