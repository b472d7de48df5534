/*
 * journey.c: stage rules and the fold of one event into a customer's state.
 *
 * Promotion rules only move a customer forward: a late or out-of-order
 * event adds to the counts but never takes a customer back, and a jump over
 * several stages is one transition. Demotion rules are the one way back,
 * and only when configured (a cancelled subscription takes loyalty back to
 * retention). Replays are recognised by the per-source offset watermark
 * kept in the state itself, so the fold is idempotent per Kafka message;
 * a producer's duplicate (same event_id, new offset) is recognised by the
 * latest event_ids kept with the customer.
 *
 * The same fold keeps the churn risk (churn.c): an event first settles the
 * deadlines the customer's silence passed before it, in the order a timer
 * would have, then moves the signals and re-scores. Deadline changes carry
 * the deadline as their cause, so a timer and a later event that settle
 * the same deadline produce the same change, and the same alert id.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journey.h"
#include "json_text.h"

static const char *const op_text[] = {
	[JOURNEY_OP_GE] = ">=", [JOURNEY_OP_GT] = ">", [JOURNEY_OP_LE] = "<=",
	[JOURNEY_OP_LT] = "<", [JOURNEY_OP_EQ] = "=",
};

#define FNV_OFFSET	UINT64_C(0xcbf29ce484222325)

/* FNV-1a: h goes on over len bytes at p */
static uint64_t
fnv(uint64_t h, const void *p, size_t len)
{
	const unsigned char	*b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * UINT64_C(0x100000001b3);
	return h;
}

static int
name_char(int c)
{
	return isalnum(c) || c == '_' || c == '-';
}

/*
 * A dotted property path at *p ("score", "review.rating.stars") into out;
 * *p moves past it. -1 if there is none, or it is too long.
 */
static int
scan_path(const char **p, char out[EVENT_NAME_MAX + 1])
{
	const char	*start = *p;
	size_t		 len;

	while (name_char((unsigned char)**p) || **p == '.')
		(*p)++;
	if ((len = (size_t)(*p - start)) == 0 || len > EVENT_NAME_MAX ||
	    start[0] == '.' || start[len - 1] == '.' ||
	    memmem(start, len, "..", 2) != NULL)
		return -1;
	memcpy(out, start, len);
	out[len] = '\0';
	return 0;
}

int
journey_rule_parse(const char *text, struct journey_rule *r,
    char err[JOURNEY_RULE_ERR_MAX])
{
	const char	*p = text, *start;
	char		*end;
	size_t		 len;

	memset(r, 0, sizeof(*r));
	while (*p == ' ')
		p++;
	for (start = p; name_char((unsigned char)*p); p++)
		;
	if ((len = (size_t)(p - start)) == 0 || len > EVENT_NAME_MAX) {
		snprintf(err, JOURNEY_RULE_ERR_MAX, "'%.64s': expected an event "
		    "type (letters, digits, '_', '-')", text);
		return -1;
	}
	memcpy(r->type, start, len);
	r->kind = JOURNEY_RULE_EVENT;
	if (*p == '.') {
		p++;
		if (scan_path(&p, r->property) == -1) {
			snprintf(err, JOURNEY_RULE_ERR_MAX, "'%.64s': expected a "
			    "property name after '.'", text);
			return -1;
		}
		r->kind = JOURNEY_RULE_PROPERTY;
	}
	while (*p == ' ')
		p++;
	if (*p == '\0') {
		if (r->kind == JOURNEY_RULE_PROPERTY) {
			snprintf(err, JOURNEY_RULE_ERR_MAX, "'%.64s': a property "
			    "needs a comparison, e.g. %s.%s >= 9", text,
			    r->type, r->property);
			return -1;
		}
		return 0;
	}
	if (r->kind == JOURNEY_RULE_EVENT)
		r->kind = JOURNEY_RULE_COUNT;
	if (strncmp(p, ">=", 2) == 0) {
		r->op = JOURNEY_OP_GE;
		p += 2;
	} else if (strncmp(p, "<=", 2) == 0) {
		r->op = JOURNEY_OP_LE;
		p += 2;
	} else if (*p == '>' || *p == '<' || *p == '=') {
		r->op = *p == '>' ? JOURNEY_OP_GT : *p == '<' ? JOURNEY_OP_LT :
		    JOURNEY_OP_EQ;
		p++;
	} else {
		snprintf(err, JOURNEY_RULE_ERR_MAX, "'%.64s': expected >=, >, <=, "
		    "< or = after '%s'", text, r->type);
		return -1;
	}
	errno = 0;
	r->threshold = strtod(p, &end);
	while (*end == ' ')
		end++;
	if (p == end || *end != '\0' || errno || !isfinite(r->threshold)) {
		snprintf(err, JOURNEY_RULE_ERR_MAX, "'%.64s': expected a number "
		    "after %s", text, op_text[r->op]);
		return -1;
	}
	if (r->kind == JOURNEY_RULE_COUNT && (r->op == JOURNEY_OP_LE ||
	    r->op == JOURNEY_OP_LT)) {
		/* a count only grows: "at most" would hold before it happened */
		snprintf(err, JOURNEY_RULE_ERR_MAX, "'%.64s': a count rule needs "
		    ">=, > or =", text);
		return -1;
	}
	return 0;
}

void
journey_model_init(struct journey_model *m)
{
	memset(m, 0, sizeof(*m));
	churn_params_default(&m->churn);
	m->cadence_default_ms = INT64_C(30) * 86400 * 1000;
}

void
journey_model_clear_stages(struct journey_model *m)
{
	m->nstages = 0;
	m->nrules = 0;
	memset(m->cadence_ms, 0, sizeof(m->cadence_ms));
}

static struct journey_trait *
trait_slot(struct journey_model *m, const char *type)
{
	struct journey_trait	*t;

	for (size_t i = 0; i < m->ntraits; i++)
		if (strcmp(m->trait[i].type, type) == 0)
			return &m->trait[i];
	if (m->ntraits == JOURNEY_TRAITS_MAX || strlen(type) > EVENT_NAME_MAX)
		return NULL;
	t = &m->trait[m->ntraits++];
	memset(t, 0, sizeof(*t));
	strcpy(t->type, type);
	return t;
}

int
journey_model_set_pain(struct journey_model *m, const char *type, int pain)
{
	struct journey_trait	*t = trait_slot(m, type);

	if (t == NULL)
		return -1;
	t->pain = pain != 0;
	return 0;
}

int
journey_model_set_sentiment(struct journey_model *m, const char *type,
    double sentiment)
{
	struct journey_trait	*t = trait_slot(m, type);

	if (t == NULL)
		return -1;
	t->has_sentiment = 1;
	t->sentiment = sentiment;
	memset(&t->scale, 0, sizeof(t->scale));
	return 0;
}

int
journey_scale_parse(const char *text, struct journey_scale *sc,
    char err[JOURNEY_RULE_ERR_MAX])
{
	const char	*p = text, *dots;
	char		*end, lo[32];

	memset(sc, 0, sizeof(*sc));
	if (scan_path(&p, sc->property) == -1 || *p != ' ') {
		snprintf(err, JOURNEY_RULE_ERR_MAX, "'%.64s': expected a number "
		    "in [-1, 1], or a property and its range (score 0..10)",
		    text);
		return -1;
	}
	while (*p == ' ')
		p++;
	/* "0..10": strtod alone would take "0." for the low end */
	if ((dots = strstr(p, "..")) == NULL || dots == p ||
	    (size_t)(dots - p) >= sizeof(lo))
		goto range;
	snprintf(lo, sizeof(lo), "%.*s", (int)(dots - p), p);
	sc->lo = strtod(lo, &end);
	if (*end != '\0' || !isfinite(sc->lo))
		goto range;
	p = dots + 2;
	errno = 0;
	sc->hi = strtod(p, &end);
	while (*end == ' ')
		end++;
	/* a span beyond a double's makes every value's sentiment NaN */
	if (end == p || *end != '\0' || errno || !isfinite(sc->hi) ||
	    sc->hi <= sc->lo || !isfinite(sc->hi - sc->lo))
		goto range;
	return 0;
range:
	snprintf(err, JOURNEY_RULE_ERR_MAX, "'%.64s': expected the range of "
	    "%s as LO..HI, LO below HI, their span a finite number", text,
	    sc->property);
	return -1;
}

int
journey_model_set_sentiment_scale(struct journey_model *m, const char *type,
    const struct journey_scale *sc)
{
	struct journey_trait	*t = trait_slot(m, type);

	if (t == NULL)
		return -1;
	t->has_sentiment = 1;
	t->sentiment = 0;
	t->scale = *sc;
	return 0;
}

void
journey_model_clear_pain(struct journey_model *m)
{
	for (size_t i = 0; i < m->ntraits; i++)
		m->trait[i].pain = 0;
}

int
journey_model_add_segment(struct journey_model *m, const char *name)
{
	if (m->nsegments == JOURNEY_SEGMENTS_MAX ||
	    strlen(name) > EVENT_NAME_MAX)
		return -1;
	for (int i = 0; i < m->nsegments; i++)
		if (strcmp(m->segment[i], name) == 0)
			return -1;
	strcpy(m->segment[m->nsegments++], name);
	return 0;
}

int
journey_model_map_segments(const struct journey_model *m,
    const char *out[JOURNEY_SEGMENTS_MAX + 1])
{
	int	n = 0, other = 0;

	for (int i = 0; i < m->nsegments; i++) {
		out[n++] = m->segment[i];
		other |= strcmp(m->segment[i], "other") == 0;
	}
	if (!other)
		out[n++] = "other";
	return n;
}

const char *
journey_model_map_segment(const struct journey_model *m, const char *segment)
{
	for (int i = 0; i < m->nsegments; i++)
		if (strcmp(m->segment[i], segment) == 0)
			return m->segment[i];
	return "other";
}

int64_t
journey_model_cadence(const struct journey_model *m, int stage)
{
	if (stage < 0 || stage >= m->nstages || m->cadence_ms[stage] == 0)
		return m->cadence_default_ms;
	return m->cadence_ms[stage];
}

/*
 * Each setting is hashed by its value, not the struct's bytes (padding),
 * and every stage by its name: a customer's stage is stored by name.
 */
uint64_t
journey_model_deadline_tag(const struct journey_model *m)
{
	const struct churn_params	*p = &m->churn;
	uint64_t			 h = FNV_OFFSET;
	int64_t				 cadence;

	h = fnv(h, &p->after_ms, sizeof(p->after_ms));
	h = fnv(h, &p->half_life_ms, sizeof(p->half_life_ms));
	h = fnv(h, p->weight, sizeof(p->weight));
	h = fnv(h, p->threshold, sizeof(p->threshold));
	h = fnv(h, &p->hysteresis, sizeof(p->hysteresis));
	for (int i = 0; i < m->nstages; i++) {
		cadence = journey_model_cadence(m, i);
		h = fnv(h, m->stage[i], strlen(m->stage[i]) + 1);
		h = fnv(h, &cadence, sizeof(cadence));
	}
	return h;
}

int
journey_model_add_stage(struct journey_model *m, const char *name)
{
	if (m->nstages == JOURNEY_STAGES_MAX ||
	    strlen(name) > EVENT_NAME_MAX ||
	    journey_model_stage_index(m, name) != JOURNEY_NO_STAGE)
		return -1;
	strcpy(m->stage[m->nstages], name);
	return m->nstages++;
}

int
journey_model_add_rule(struct journey_model *m, const struct journey_rule *r)
{
	if (m->nrules == JOURNEY_RULES_MAX || r->stage < 0 ||
	    r->stage >= m->nstages)
		return -1;
	if (r->kind == JOURNEY_RULE_EVENT && !r->demote &&
	    journey_model_stage_of(m, r->type) != JOURNEY_NO_STAGE)
		return -1;
	m->rule[m->nrules++] = *r;
	return 0;
}

static int
rule_cmp(const void *a, const void *b)
{
	return strcmp(((const struct journey_rule *)a)->type,
	    ((const struct journey_rule *)b)->type);
}

static int
trait_cmp(const void *a, const void *b)
{
	return strcmp(((const struct journey_trait *)a)->type,
	    ((const struct journey_trait *)b)->type);
}

void
journey_model_finish(struct journey_model *m)
{
	qsort(m->rule, m->nrules, sizeof(m->rule[0]), rule_cmp);
	qsort(m->trait, m->ntraits, sizeof(m->trait[0]), trait_cmp);
}

/* bsearch's comparison of a type name with a trait */
static int
trait_type_cmp(const void *type, const void *trait)
{
	return strcmp(type, ((const struct journey_trait *)trait)->type);
}

const struct journey_trait *
journey_model_trait(const struct journey_model *m, const char *type)
{
	if (m->ntraits == 0)
		return NULL;
	return bsearch(type, m->trait, m->ntraits, sizeof(m->trait[0]),
	    trait_type_cmp);
}

int
journey_model_stage_index(const struct journey_model *m, const char *name)
{
	for (int i = 0; i < m->nstages; i++)
		if (strcmp(m->stage[i], name) == 0)
			return i;
	return JOURNEY_NO_STAGE;
}

/* The rules for type: a run of the sorted array, [*first, *first + n). */
static size_t
rules_for(const struct journey_model *m, const char *type, size_t *first)
{
	size_t	lo = 0, hi = m->nrules, n = 0;

	while (lo < hi) {
		size_t	mid = (lo + hi) / 2;

		if (strcmp(m->rule[mid].type, type) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	while (lo + n < m->nrules && strcmp(m->rule[lo + n].type, type) == 0)
		n++;
	return n;
}

int
journey_model_stage_of(const struct journey_model *m, const char *type)
{
	size_t	first, n = rules_for(m, type, &first);

	for (size_t i = first; i < first + n; i++)
		if (m->rule[i].kind == JOURNEY_RULE_EVENT && !m->rule[i].demote)
			return m->rule[i].stage;
	return JOURNEY_NO_STAGE;
}

/* Whether a count rule needs the customer's count of type. */
static int
counted_by_rule(const struct journey_model *m, const char *type)
{
	size_t	first, n = rules_for(m, type, &first);

	for (size_t i = first; i < first + n; i++)
		if (m->rule[i].kind == JOURNEY_RULE_COUNT)
			return 1;
	return 0;
}

void
journey_state_init(struct journey_state *s)
{
	memset(s, 0, sizeof(*s));
	s->stage = JOURNEY_NO_STAGE;
	churn_signals_init(&s->risk);
}

/*
 * Returns the watermark slot for source, kept last: the slots are in the
 * order of their latest use, and when all are taken the first, the least
 * lately used, makes room (offsets of different partitions say nothing of
 * which was used last). A customer seen on more partitions than we
 * remember is rare: keys pin customers to partitions.
 */
static struct journey_source *
source_slot(struct journey_state *s, const char *source)
{
	struct journey_source	 found, *last;
	int			 i;

	for (i = 0; i < s->nsources; i++)
		if (strcmp(s->source[i].name, source) == 0)
			break;
	if (i < s->nsources)
		found = s->source[i];
	else {
		if (s->nsources == JOURNEY_SOURCES_MAX)
			i = 0;		/* forgotten */
		else
			i = s->nsources++;
		memset(&found, 0, sizeof(found));
		strncpy(found.name, source, sizeof(found.name) - 1);
		found.offset = -1;
	}
	last = &s->source[s->nsources - 1];
	memmove(&s->source[i], &s->source[i + 1],
	    (size_t)(last - &s->source[i]) * sizeof(*last));
	*last = found;
	return last;
}

/*
 * Counts one event of type. A type met when every slot is taken goes to
 * other, unless a count rule needs it: then it takes the slot of the
 * least frequent type no rule needs, whose count moves to other.
 */
static uint64_t
count_action(const struct journey_model *m, struct journey_state *s,
    const char *type)
{
	struct journey_action	*a = NULL;

	for (int i = 0; i < s->nactions; i++)
		if (strcmp(s->action[i].type, type) == 0)
			return ++s->action[i].count;
	if (s->nactions < JOURNEY_ACTIONS_MAX)
		a = &s->action[s->nactions++];
	else if (counted_by_rule(m, type)) {
		for (int i = 0; i < s->nactions; i++)
			if (!counted_by_rule(m, s->action[i].type) &&
			    (a == NULL || s->action[i].count < a->count))
				a = &s->action[i];
		if (a != NULL)
			s->other_actions += a->count;
	}
	if (a == NULL) {
		s->other_actions++;
		return 0;
	}
	strcpy(a->type, type);
	a->count = 1;
	return 1;
}

static void
count_channel(struct journey_state *s, const char *channel)
{
	for (int i = 0; i < s->nchannels; i++)
		if (strcmp(s->channel[i].type, channel) == 0) {
			s->channel[i].count++;
			return;
		}
	if (s->nchannels == JOURNEY_CHANNELS_MAX) {
		s->other_channels++;
		return;
	}
	strcpy(s->channel[s->nchannels].type, channel);
	s->channel[s->nchannels++].count = 1;
}

uint64_t
journey_id_hash(const char *id)
{
	uint64_t	h = fnv(FNV_OFFSET, id, strlen(id));

	/* 52 bits: four fit in one short hash field (13 hex digits each) */
	h &= JOURNEY_ID_HASH_MASK;
	return h ? h : 1;	/* 0 never stands for an id */
}

/* 1 if the event_id was seen lately; otherwise remembers it. */
static int
seen_id(struct journey_state *s, const char *event_id)
{
	uint64_t	h = journey_id_hash(event_id);

	for (int i = 0; i < s->nids; i++)
		if (s->recent_id[i] == h)
			return 1;
	if (s->nids == JOURNEY_IDS_MAX) {
		memmove(s->recent_id, s->recent_id + 1,
		    (JOURNEY_IDS_MAX - 1) * sizeof(s->recent_id[0]));
		s->nids--;
	}
	s->recent_id[s->nids++] = h;
	return 0;
}

static int
compare(double v, enum journey_op op, double threshold)
{
	switch (op) {
	case JOURNEY_OP_GE:
		return v >= threshold;
	case JOURNEY_OP_GT:
		return v > threshold;
	case JOURNEY_OP_LE:
		return v <= threshold;
	case JOURNEY_OP_LT:
		return v < threshold;
	case JOURNEY_OP_EQ:
		return v == threshold;
	}
	return 0;
}

static int
property_value(const struct event *ev, const char *path, double *v)
{
	struct json_text_member	 m;
	const char		*text = ev->properties, *dot;
	size_t			 len = ev->properties_len;
	char			 part[EVENT_NAME_MAX + 1];

	if (strcmp(path, "value") == 0 && ev->has_value) {
		*v = ev->value;
		return 0;
	}
	if (strcmp(path, "sentiment") == 0 && ev->has_sentiment) {
		*v = ev->sentiment;
		return 0;
	}
	if (text == NULL)
		return -1;
	/* down the dotted path, one object at a time */
	memset(&m, 0, sizeof(m));
	m.name = part;
	m.value.type = JSON_TEXT_OBJECT;
	while (m.value.type == JSON_TEXT_OBJECT && *path) {
		dot = strchr(path, '.');
		snprintf(part, sizeof(part), "%.*s",
		    (int)(dot ? (size_t)(dot - path) : strlen(path)), path);
		if (json_text_object(text, len, &m, 1, NULL) != 0)
			return -1;
		text = m.value.text;
		len = m.value.len;
		path = dot ? dot + 1 : "";
	}
	if (*path != '\0' || (m.value.type != JSON_TEXT_INTEGER &&
	    m.value.type != JSON_TEXT_REAL))
		return -1;
	*v = m.value.number;
	return 0;
}

int
journey_event_sentiment(const struct journey_trait *t, const struct event *ev,
    double *sentiment)
{
	const struct journey_scale	*sc;
	double				 v;

	if (ev->has_sentiment) {
		*sentiment = ev->sentiment;
		return 1;
	}
	if (t == NULL || !t->has_sentiment)
		return 0;
	sc = &t->scale;
	if (sc->property[0] == '\0') {
		*sentiment = t->sentiment;
		return 1;
	}
	if (property_value(ev, sc->property, &v) == -1)
		return 0;
	v = -1 + 2 * (v - sc->lo) / (sc->hi - sc->lo);
	*sentiment = v < -1 ? -1 : v > 1 ? 1 : v;
	return 1;
}

static int
rule_holds(const struct journey_rule *r, const struct event *ev,
    uint64_t count)
{
	double	v;

	switch (r->kind) {
	case JOURNEY_RULE_EVENT:
		return 1;
	case JOURNEY_RULE_COUNT:
		return compare((double)count, r->op, r->threshold);
	case JOURNEY_RULE_PROPERTY:
		return property_value(ev, r->property, &v) == 0 &&
		    compare(v, r->op, r->threshold);
	}
	return 0;
}

static struct journey_change *
add_change(struct journey_result *res, enum journey_change_kind kind,
    int stage, int from, int to, int64_t at_ms, int64_t deadline_ms)
{
	struct journey_change	*c = &res->change[res->nchanges++];

	c->kind = kind;
	c->stage = stage;
	c->from = from;
	c->to = to;
	c->at_ms = at_ms;
	c->deadline_ms = deadline_ms;
	c->since_ms = 0;
	c->score = 0;
	c->reasons[0] = '\0';
	return c;
}

/* Re-scores s at now; a new level is a change caused as deadline says. */
static void
score(const struct journey_model *m, struct journey_state *s, int64_t now,
    int64_t at_ms, int64_t deadline_ms, struct journey_result *res)
{
	struct churn_score	 sc;
	struct journey_change	*c;
	int			 level;

	churn_score(&m->churn, &s->risk, journey_model_cadence(m, s->stage),
	    s->last_seen_ms, now, &sc);
	level = churn_level_for(&m->churn, s->risk.level, sc.score);
	s->risk.score = sc.score;
	s->risk_at_ms = now;
	if (level == s->risk.level)
		return;
	c = add_change(res, JOURNEY_CHANGE_RISK, s->stage, s->risk.level,
	    level, at_ms, deadline_ms);
	c->score = sc.score;
	churn_reasons(&sc, 0, c->reasons);
	s->risk.level = level;
}

void
journey_risk_reasons(const struct journey_model *m,
    const struct journey_state *s, char out[CHURN_REASONS_MAX])
{
	struct churn_score	sc;

	out[0] = '\0';
	if (s->stage == JOURNEY_NO_STAGE)
		return;
	churn_score(&m->churn, &s->risk, journey_model_cadence(m, s->stage),
	    s->last_seen_ms, s->risk_at_ms, &sc);
	churn_reasons(&sc, s->risk.churned_ms != CHURN_NOT_CHURNED ?
	    m->churn.after_ms : 0, out);
}

int64_t
journey_deadline(const struct journey_model *m, const struct journey_state *s)
{
	if (s->stage == JOURNEY_NO_STAGE)
		return CHURN_NEVER;
	return churn_next_deadline(&m->churn, &s->risk,
	    journey_model_cadence(m, s->stage), s->last_seen_ms);
}

static void
settle(const struct journey_model *m, struct journey_state *s, int64_t now,
    struct journey_result *res)
{
	struct journey_change	*c;
	int64_t			 d;

	/* each deadline raises the level or churns: a few rounds at most */
	for (int round = 0; round <= CHURN_LEVELS; round++) {
		if ((d = journey_deadline(m, s)) > now)
			return;
		score(m, s, d, d, d, res);
		if (m->churn.after_ms > 0 &&
		    d - s->last_seen_ms >= m->churn.after_ms) {
			s->risk.churned_ms = d;
			c = add_change(res, JOURNEY_CHANGE_CHURNED, s->stage,
			    s->stage, s->stage, d, d);
			c->score = s->risk.score;
			journey_risk_reasons(m, s, c->reasons);
		}
	}
}

/*
 * Where s's deadline index entry goes, once the index is known to be
 * read up to after. An event mostly moves the deadline later, and moving
 * the entry each time would be a sorted-set update per event; an entry
 * left earlier than the deadline costs one look when it falls due
 * (settle finds nothing due, and the entry moves on to the deadline).
 * So it moves when the deadline is earlier than it, or when it is at or
 * before after (a timer took it, or it would fire for nothing), or when
 * it is not known (a state stored before it was kept).
 */
static void
index_deadline(const struct journey_model *m, struct journey_state *s,
    int64_t after)
{
	int64_t	d = journey_deadline(m, s);

	if (d == CHURN_NEVER)
		s->indexed_ms = 0;
	else if (s->indexed_ms == 0 || s->indexed_ms <= after ||
	    s->indexed_ms > d)
		s->indexed_ms = d;
}

/* src into dst of size bytes, cut short if need be (per event: no printf) */
static void
copy_name(char *dst, size_t size, const char *src)
{
	size_t	len = strnlen(src, size - 1);

	memmove(dst, src, len);
	dst[len] = '\0';
}

/*
 * The map segment the customer counts in now, given the stage it was in
 * before (and since when). A customer who changes segment takes the entry
 * into that stage along, as it takes its gauges: a segment's moves on from
 * a stage are then never more than its entries into it.
 */
static void
refresh_map_segment(const struct journey_model *m, struct journey_state *s,
    int stage, int64_t since_ms, struct journey_result *res)
{
	const char	*now = journey_model_map_segment(m, s->segment);

	if (strcmp(s->mseg, now) == 0)
		return;
	if (stage != JOURNEY_NO_STAGE) {
		copy_name(res->old_mseg, sizeof(res->old_mseg), s->mseg);
		res->old_stage = stage;
		res->old_since_ms = since_ms;
	}
	copy_name(s->mseg, sizeof(s->mseg), now);
}

void
journey_settle(const struct journey_model *m, struct journey_state *s,
    int64_t now, struct journey_result *res)
{
	res->outcome = JOURNEY_APPLIED;
	res->from = res->to = s->stage;
	res->silent_mseg = journey_model_map_segment(m, s->segment);
	res->old_stage = JOURNEY_NO_STAGE;
	res->nchanges = 0;
	settle(m, s, now, res);
	refresh_map_segment(m, s, s->stage, s->stage_at_ms, res);
	index_deadline(m, s, now);
}

int
journey_change_alerts(const struct journey_change *c)
{
	return c->kind != JOURNEY_CHANGE_RISK || c->to > c->from;
}

const char *
journey_change_kind_name(enum journey_change_kind kind)
{
	static const char *const names[] = {
		[JOURNEY_CHANGE_STAGE] = "stage",
		[JOURNEY_CHANGE_RISK] = "risk",
		[JOURNEY_CHANGE_CHURNED] = "churned",
		[JOURNEY_CHANGE_REACTIVATED] = "reactivated",
	};

	return names[kind];
}

int
journey_apply(const struct journey_model *m, struct journey_state *s,
    const struct event *ev, const char *source, int64_t offset,
    struct journey_result *res)
{
	struct journey_source		*src = source_slot(s, source);
	const struct journey_trait	*trait;
	size_t				 first, n;
	uint64_t			 count;
	double				 sentiment;
	int				 up = JOURNEY_NO_STAGE;
	int				 down = JOURNEY_NO_STAGE;
	int				 target, came_back, felt;
	int64_t				 since_ms;

	res->from = res->to = s->stage;
	res->silent_mseg = NULL;
	res->old_stage = JOURNEY_NO_STAGE;
	res->nchanges = 0;
	if (offset <= src->offset) {
		res->outcome = JOURNEY_DUPLICATE;
		return 0;
	}
	src->offset = offset;
	if (ev->event_id[0] != '\0' && seen_id(s, ev->event_id)) {
		res->outcome = JOURNEY_DUPLICATE_ID;
		/* only the offset moved, but the state is written */
		index_deadline(m, s, ev->ts_ms);
		return 0;
	}
	/* what the customer's silence reached before this event */
	settle(m, s, ev->ts_ms - 1, res);
	/* the segment it settled in, before the event's own is taken */
	if (res->nchanges > 0)
		res->silent_mseg = journey_model_map_segment(m, s->segment);
	came_back = s->events > 0 && ev->ts_ms > s->last_seen_ms;
	since_ms = s->stage_at_ms;

	if (s->events == 0 || ev->ts_ms < s->first_seen_ms)
		s->first_seen_ms = ev->ts_ms;
	if (s->events == 0 || ev->ts_ms >= s->last_seen_ms) {
		s->last_seen_ms = ev->ts_ms;
		if (ev->channel[0] != '\0')
			strcpy(s->last_channel, ev->channel);
		if (ev->segment[0] != '\0')
			strcpy(s->segment, ev->segment);
	}
	copy_name(s->home, sizeof(s->home), source);
	s->events++;
	if (ev->channel[0] != '\0')
		count_channel(s, ev->channel);
	if (ev->has_value)
		s->value_total += ev->value;
	count = count_action(m, s, ev->type);
	trait = journey_model_trait(m, ev->type);
	felt = journey_event_sentiment(trait, ev, &sentiment);
	churn_observe(&m->churn, &s->risk, ev->ts_ms, trait && trait->pain,
	    felt, felt ? sentiment : 0);

	n = rules_for(m, ev->type, &first);
	for (size_t i = first; i < first + n; i++) {
		const struct journey_rule	*r = &m->rule[i];

		if (!rule_holds(r, ev, count))
			continue;
		if (!r->demote && r->stage > up)
			up = r->stage;
		/* of several demotions, the mildest */
		if (r->demote && r->stage < s->stage && r->stage > down)
			down = r->stage;
	}
	if (down != JOURNEY_NO_STAGE)
		target = down;
	else if (up > s->stage)
		target = up;
	else if (s->stage == JOURNEY_NO_STAGE)
		target = 0;	/* anyone we have heard from is at least aware */
	else
		target = s->stage;
	if (target != s->stage) {
		add_change(res, JOURNEY_CHANGE_STAGE, target, s->stage, target,
		    ev->ts_ms, -1)->since_ms = s->stage_at_ms;
		s->stage = target;
		s->stage_at_ms = s->entered_ms[target] = ev->ts_ms;
		res->to = target;
		res->outcome = JOURNEY_TRANSITION;
	} else
		res->outcome = JOURNEY_APPLIED;
	if (came_back && s->risk.churned_ms != CHURN_NOT_CHURNED) {
		add_change(res, JOURNEY_CHANGE_REACTIVATED, s->stage, s->stage,
		    s->stage, ev->ts_ms, -1);
		s->risk.churned_ms = CHURN_NOT_CHURNED;
	}
	/*
	 * scored as of the latest time known: a late event's silence is not
	 * over (scored at last_seen, it would undo the rises the timers
	 * settled since, which would then be alerted again with their ids)
	 */
	score(m, s, s->risk_at_ms > s->last_seen_ms ? s->risk_at_ms :
	    s->last_seen_ms, ev->ts_ms, -1, res);
	refresh_map_segment(m, s, res->from, since_ms, res);
	index_deadline(m, s, ev->ts_ms);
	return 0;
}
