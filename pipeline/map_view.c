/*
 * map_view.c: reading the journey map's counters back as a map. Counters
 * of several segments add up (the map of all segments is their sum);
 * the derived figures come last, in map_view_finish: conversion onward is
 * the moves to any later stage over the entries, the median time to move
 * on comes from the time buckets (to within a factor of two, rounded up),
 * and the opportunities are the stages that stand out worst.
 */
#include <stdlib.h>
#include <string.h>

#include "map_view.h"
#include "timestamp.h"

void
map_view_init(struct map_view *v, const struct journey_model *m,
    int window_days)
{
	memset(v, 0, sizeof(*v));
	v->model = m;
	v->window_days = window_days;
	v->last_day = -1;
	for (int o = 0; o < MAP_VIEW_OPPORTUNITIES; o++)
		v->opportunity[o] = -1;
}

void
map_view_free(struct map_view *v)
{
	for (int i = 0; i < JOURNEY_STAGES_MAX; i++) {
		free(v->stage[i].day);
		free(v->stage[i].day_entries);
		v->stage[i].day = NULL;
		v->stage[i].day_entries = NULL;
		map_view_list_free(&v->stage[i].actions);
		map_view_list_free(&v->stage[i].channels);
		map_view_list_free(&v->stage[i].pains);
	}
}

void
map_view_count_add(int64_t *sum, int64_t x)
{
	if (__builtin_add_overflow(*sum, x, sum))
		*sum = x > 0 ? INT64_MAX : INT64_MIN;
}

/* Entries on one day ("YYYY-MM-DD"); unreadable days are skipped. */
static int
day_add(struct map_view *v, struct map_view_stage *st, const char *text,
    size_t len, int64_t n)
{
	int64_t	 ms, *grown_n;
	int32_t	 day, *grown;

	if (len != 10 || timestamp_parse_iso8601(text, len, &ms) == -1)
		return 0;
	day = (int32_t)(ms / 86400000);
	if (st->ndays == st->days_cap) {
		st->days_cap = st->days_cap ? 2 * st->days_cap : 32;
		if ((grown = reallocarray(st->day, st->days_cap,
		    sizeof(*st->day))) == NULL)
			return -1;
		st->day = grown;
		if ((grown_n = reallocarray(st->day_entries, st->days_cap,
		    sizeof(*st->day_entries))) == NULL)
			return -1;
		st->day_entries = grown_n;
	}
	st->day[st->ndays] = day;
	st->day_entries[st->ndays++] = n;
	/* a day whose entries all moved to another segment is none of its */
	if (n > 0 && day > v->last_day)
		v->last_day = day;
	return 0;
}

static int
stage_of(const struct map_view *v, const char *name, size_t len)
{
	char	buf[EVENT_NAME_MAX + 1];

	if (len == 0 || len > EVENT_NAME_MAX)
		return JOURNEY_NO_STAGE;
	memcpy(buf, name, len);
	buf[len] = '\0';
	return journey_model_stage_index(v->model, buf);
}

/* a name too long for any event is no journeyd's: skipped */
int
map_view_list_add(struct map_view_list *l, const char *name, size_t len,
    int64_t n)
{
	struct map_view_count	*grown;
	size_t			 cap = l->cap ? 2 * l->cap : 16;

	if (len > EVENT_NAME_MAX)
		return 0;
	if (l->n == l->cap) {
		if ((grown = reallocarray(l->item, cap,
		    sizeof(*l->item))) == NULL)
			return -1;
		l->item = grown;
		l->cap = cap;
	}
	memcpy(l->item[l->n].name, name, len);
	l->item[l->n].name[len] = '\0';
	l->item[l->n++].count = n;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	const struct map_view_count	*x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int
count_cmp(const void *a, const void *b)
{
	const struct map_view_count	*x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->name, y->name);
}

void
map_view_list_finish(struct map_view_list *l)
{
	size_t	kept = 0;

	if (l->n == 0)
		return;
	/* sorted by name, a name's counts (one per segment) are neighbours */
	qsort(l->item, l->n, sizeof(*l->item), name_cmp);
	for (size_t i = 0; i < l->n; i++)
		if (kept > 0 && strcmp(l->item[kept - 1].name,
		    l->item[i].name) == 0)
			map_view_count_add(&l->item[kept - 1].count,
			    l->item[i].count);
		else
			l->item[kept++] = l->item[i];
	l->n = kept;
	qsort(l->item, l->n, sizeof(*l->item), count_cmp);
}

void
map_view_list_free(struct map_view_list *l)
{
	free(l->item);
	memset(l, 0, sizeof(*l));
}

static int
is(const char *s, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(s, want, len) == 0;
}

static int
prefixed(const char *s, size_t len, const char *prefix, size_t *skip)
{
	*skip = strlen(prefix);
	return len > *skip && memcmp(s, prefix, *skip) == 0;
}

/* K of a STAGE:left:K field, or -1 */
static int
bucket_of(const char *s, size_t len)
{
	int	k = 0;

	if (len == 0 || len > 2)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		k = 10 * k + (s[i] - '0');
	}
	return k < MAP_BUCKETS ? k : -1;
}

int
map_view_add(struct map_view *v, const char *field, size_t flen,
    const char *value, size_t vlen)
{
	struct map_view_stage	*st;
	const char		*sep = field, *rest;
	char			 num[32];
	size_t			 n, skip;
	int			 from, to;
	int64_t			 x;

	if (vlen == 0 || vlen >= sizeof(num))
		return 0;
	memcpy(num, value, vlen);
	num[vlen] = '\0';
	x = strtoll(num, NULL, 10);
	while (sep < field + flen && *sep != ':' && *sep != '>')
		sep++;
	if (sep == field + flen ||
	    (from = stage_of(v, field, (size_t)(sep - field))) ==
	    JOURNEY_NO_STAGE)
		return 0;
	st = &v->stage[from];
	rest = sep + 1;
	n = flen - (size_t)(rest - field);
	if (*sep == '>') {
		/* FROM>TO, FROM>TO:ms; only moves onward are conversions */
		const char	*colon = memchr(rest, ':', n);
		size_t		 tolen = colon ? (size_t)(colon - rest) : n;

		if ((to = stage_of(v, rest, tolen)) <= from)
			return 0;
		if (colon == NULL) {
			map_view_count_add(&st->next[to], x);
			map_view_count_add(&st->moved_on, x);
		} else if (is(colon + 1, n - tolen - 1, "ms"))
			map_view_count_add(&st->moved_on_ms, x);
		return 0;
	}
	if (is(rest, n, "in"))
		map_view_count_add(&st->in, x);
	else if (is(rest, n, "entries"))
		map_view_count_add(&st->entries, x);
	else if (is(rest, n, "at_risk"))
		map_view_count_add(&st->at_risk, x);
	else if (is(rest, n, "high_risk"))
		map_view_count_add(&st->high_risk, x);
	else if (is(rest, n, "churned"))
		map_view_count_add(&st->churned, x);
	else if (is(rest, n, "sent_milli"))
		map_view_count_add(&st->sent_milli, x);
	else if (is(rest, n, "sent_n"))
		map_view_count_add(&st->sent_n, x);
	else if (prefixed(rest, n, "a:", &skip))
		return map_view_list_add(&st->actions, rest + skip, n - skip,
		    x);
	else if (prefixed(rest, n, "c:", &skip))
		return map_view_list_add(&st->channels, rest + skip, n - skip,
		    x);
	else if (prefixed(rest, n, "pain:", &skip)) {
		map_view_count_add(&st->pain_total, x);
		return map_view_list_add(&st->pains, rest + skip, n - skip, x);
	} else if (prefixed(rest, n, "day:", &skip)) {
		return day_add(v, st, rest + skip, n - skip, x);
	} else if (prefixed(rest, n, "left:", &skip)) {
		int	k = bucket_of(rest + skip, n - skip);

		if (k != -1)
			map_view_count_add(&st->left[k], x);
	}
	return 0;
}

static int64_t
median_ms(const struct map_view_stage *st)
{
	int64_t	total = 0, seen = 0;

	for (int k = 0; k < MAP_BUCKETS; k++)
		map_view_count_add(&total, st->left[k]);
	for (int k = 0; k < MAP_BUCKETS && total > 0; k++) {
		map_view_count_add(&seen, st->left[k]);
		if (seen >= total - total / 2)	/* half, rounded up */
			return map_bucket_ms(k);
	}
	return -1;
}

void
map_view_set_window(struct map_view *v, int window_days)
{
	v->window_days = window_days;
	for (int i = 0; i < v->model->nstages; i++) {
		struct map_view_stage	*st = &v->stage[i];

		st->entries_window = window_days == 0 ? st->entries : 0;
		for (size_t d = 0; d < st->ndays && window_days > 0; d++)
			if (st->day[d] > v->last_day - window_days)
				map_view_count_add(&st->entries_window,
				    st->day_entries[d]);
	}
}

void
map_view_finish(struct map_view *v)
{
	const struct map_view_stage	*best[MAP_VIEW_OPPORTUNITIES] = { 0 };
	int				 last = v->model->nstages - 1;

	map_view_set_window(v, v->window_days);
	for (int i = 0; i <= last; i++) {
		struct map_view_stage	*st = &v->stage[i];

		st->conversion = st->entries > 0 && i < last ?
		    (double)st->moved_on / (double)st->entries : -1;
		st->median_ms = median_ms(st);
		map_view_list_finish(&st->actions);
		map_view_list_finish(&st->channels);
		map_view_list_finish(&st->pains);
		st->sentiment = st->sent_n > 0 ?
		    (double)st->sent_milli / 1000.0 / (double)st->sent_n : 0;
		if (st->conversion >= 0 && (best[MAP_VIEW_DROPOFF] == NULL ||
		    st->conversion < best[MAP_VIEW_DROPOFF]->conversion))
			best[MAP_VIEW_DROPOFF] = st;
		if (st->median_ms >= 0 && (best[MAP_VIEW_SLOWEST] == NULL ||
		    st->median_ms > best[MAP_VIEW_SLOWEST]->median_ms))
			best[MAP_VIEW_SLOWEST] = st;
		if (st->sent_n > 0 && (best[MAP_VIEW_UNHAPPIEST] == NULL ||
		    st->sentiment < best[MAP_VIEW_UNHAPPIEST]->sentiment))
			best[MAP_VIEW_UNHAPPIEST] = st;
	}
	for (int o = 0; o < MAP_VIEW_OPPORTUNITIES; o++)
		v->opportunity[o] = best[o] ? (int)(best[o] - v->stage) : -1;
}

int
map_view_top(const struct map_view_list *l, int n,
    struct map_view_count *out)
{
	if ((size_t)n > l->n)
		n = (int)l->n;
	if (n > 0)
		memcpy(out, l->item, (size_t)n * sizeof(*out));
	return n;
}

const char *
map_view_opportunity_name(enum map_view_opportunity o)
{
	static const char *const names[] = {
		[MAP_VIEW_DROPOFF] = "dropoff", [MAP_VIEW_SLOWEST] = "slowest",
		[MAP_VIEW_UNHAPPIEST] = "unhappiest",
	};

	return names[o];
}

static json_t *
top_json(const struct map_view_list *l)
{
	struct map_view_count	 top[MAP_VIEW_TOP];
	json_t			*a = json_array();
	int			 n = map_view_top(l, MAP_VIEW_TOP, top);

	for (int i = 0; i < n && a != NULL; i++)
		json_array_append_new(a, json_pack("{s:s, s:I}", "name",
		    top[i].name, "count", (json_int_t)top[i].count));
	return a;
}

static json_t *
number_or_null(int valid, double v)
{
	return valid ? json_real(v) : json_null();
}

json_t *
map_view_json(const struct map_view *v, const char *segment)
{
	const struct journey_model	*m = v->model;
	json_t				*root, *stages, *opp, *next;
	double				 figure;
	char				 until[TIMESTAMP_ISO_LEN];

	timestamp_format_iso8601((int64_t)v->last_day * 86400000, until);
	until[10] = '\0';
	root = json_pack("{s:s, s:i, s:o, s:[], s:{}}", "segment", segment,
	    "window_days", v->window_days, "until", v->last_day >= 0 ?
	    json_string(until) : json_null(), "stages", "opportunities");
	if (root == NULL)
		return NULL;
	stages = json_object_get(root, "stages");
	for (int i = 0; i < m->nstages; i++) {
		const struct map_view_stage	*st = &v->stage[i];

		next = json_object();
		for (int j = i + 1; j < m->nstages; j++)
			json_object_set_new(next, m->stage[j],
			    json_integer(st->next[j]));
		json_array_append_new(stages, json_pack("{s:s, s:I, s:I, s:I, "
		    "s:I, s:I, s:o, s:I, s:o, s:o, s:o, s:I, s:o, s:o, s:o, "
		    "s:o}",
		    "name", m->stage[i], "in", (json_int_t)st->in,
		    "entries", (json_int_t)st->entries,
		    "at_risk", (json_int_t)st->at_risk,
		    "high_risk", (json_int_t)st->high_risk,
		    "churned", (json_int_t)st->churned,
		    "conversion", number_or_null(st->conversion >= 0,
		    st->conversion),
		    "moved_on", (json_int_t)st->moved_on,
		    "median_ms", st->median_ms >= 0 ?
		    json_integer(st->median_ms) : json_null(),
		    "sentiment", number_or_null(st->sent_n > 0, st->sentiment),
		    "next", next,
		    "pain_points", (json_int_t)st->pain_total,
		    "actions", top_json(&st->actions),
		    "touchpoints", top_json(&st->channels),
		    "pains", top_json(&st->pains),
		    "sentiment_samples", json_integer(st->sent_n)));
		json_object_set_new(json_array_get(stages, (size_t)i),
		    "entries_window", json_integer(st->entries_window));
	}
	opp = json_object_get(root, "opportunities");
	for (int o = 0; o < MAP_VIEW_OPPORTUNITIES; o++) {
		const struct map_view_stage	*st;

		if (v->opportunity[o] < 0)
			continue;
		st = &v->stage[v->opportunity[o]];
		figure = o == MAP_VIEW_DROPOFF ? st->conversion :
		    o == MAP_VIEW_SLOWEST ? (double)st->median_ms :
		    st->sentiment;
		json_object_set_new(opp, map_view_opportunity_name(
		    (enum map_view_opportunity)o), json_pack("{s:s, s:f}",
		    "stage", m->stage[v->opportunity[o]], "figure", figure));
	}
	return root;
}
