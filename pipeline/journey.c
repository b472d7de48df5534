/*
 * journey.c: stage rules and the fold of one event into a customer's state.
 * Stages only move forward: a late or out-of-order event can add to the
 * counts but never takes a customer back, and a jump over several stages is
 * one transition. Replays are recognised by the per-source offset watermark
 * kept in the state itself, so the fold is idempotent per Kafka message.
 */
#include <stdlib.h>
#include <string.h>

#include "journey.h"

void
journey_model_init(struct journey_model *m)
{
	memset(m, 0, sizeof(*m));
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
journey_model_add_rule(struct journey_model *m, int stage, const char *type)
{
	if (m->nrules == JOURNEY_RULES_MAX || strlen(type) > EVENT_NAME_MAX ||
	    stage < 0 || stage >= m->nstages)
		return -1;
	for (size_t i = 0; i < m->nrules; i++)
		if (strcmp(m->rule[i].type, type) == 0)
			return -1;
	strcpy(m->rule[m->nrules].type, type);
	m->rule[m->nrules].stage = stage;
	m->nrules++;
	return 0;
}

static int
rule_cmp(const void *a, const void *b)
{
	return strcmp(((const struct journey_rule *)a)->type,
	    ((const struct journey_rule *)b)->type);
}

void
journey_model_finish(struct journey_model *m)
{
	qsort(m->rule, m->nrules, sizeof(m->rule[0]), rule_cmp);
}

int
journey_model_stage_index(const struct journey_model *m, const char *name)
{
	for (int i = 0; i < m->nstages; i++)
		if (strcmp(m->stage[i], name) == 0)
			return i;
	return JOURNEY_NO_STAGE;
}

int
journey_model_stage_of(const struct journey_model *m, const char *type)
{
	struct journey_rule	key, *r;

	if (strlen(type) > EVENT_NAME_MAX)
		return JOURNEY_NO_STAGE;
	strcpy(key.type, type);
	r = bsearch(&key, m->rule, m->nrules, sizeof(m->rule[0]), rule_cmp);
	return r ? r->stage : JOURNEY_NO_STAGE;
}

void
journey_state_init(struct journey_state *s)
{
	memset(s, 0, sizeof(*s));
	s->stage = JOURNEY_NO_STAGE;
}

/*
 * Returns the watermark slot for source, claiming a free one or, when all
 * are taken, the one with the oldest offset (a customer seen on more
 * partitions than we remember is rare: keys pin customers to partitions).
 */
static struct journey_source *
source_slot(struct journey_state *s, const char *source)
{
	struct journey_source	*victim;

	for (int i = 0; i < s->nsources; i++)
		if (strcmp(s->source[i].name, source) == 0)
			return &s->source[i];
	if (s->nsources < JOURNEY_SOURCES_MAX) {
		victim = &s->source[s->nsources++];
	} else {
		victim = &s->source[0];
		for (int i = 1; i < s->nsources; i++)
			if (s->source[i].offset < victim->offset)
				victim = &s->source[i];
	}
	strncpy(victim->name, source, sizeof(victim->name) - 1);
	victim->name[sizeof(victim->name) - 1] = '\0';
	victim->offset = -1;
	return victim;
}

int
journey_apply(const struct journey_model *m, struct journey_state *s,
    const struct event *ev, const char *source, int64_t offset,
    struct journey_result *res)
{
	struct journey_source	*src = source_slot(s, source);
	int			 target;

	res->from = res->to = s->stage;
	if (offset <= src->offset) {
		res->outcome = JOURNEY_DUPLICATE;
		return 0;
	}
	src->offset = offset;

	if (s->events == 0 || ev->ts_ms < s->first_seen_ms)
		s->first_seen_ms = ev->ts_ms;
	if (s->events == 0 || ev->ts_ms >= s->last_seen_ms) {
		s->last_seen_ms = ev->ts_ms;
		if (ev->channel[0] != '\0')
			strcpy(s->last_channel, ev->channel);
	}
	s->events++;

	target = journey_model_stage_of(m, ev->type);
	/* anyone we have heard from is at least aware */
	if (target == JOURNEY_NO_STAGE && s->stage == JOURNEY_NO_STAGE)
		target = 0;
	if (target > s->stage) {
		s->stage = target;
		s->stage_at_ms = ev->ts_ms;
		res->to = target;
		res->outcome = JOURNEY_TRANSITION;
	} else
		res->outcome = JOURNEY_APPLIED;
	return 0;
}
