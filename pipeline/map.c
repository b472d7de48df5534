/*
 * map.c: the counters of the journey map that events move, per stage and
 * segment. An event counts in the stage the customer is in after it (its
 * action, channel, sentiment and pain point); a stage change counts an
 * entry into the new stage and a conversion from the old one, with the
 * time it took (and the day it happened, so a window of days can be
 * read back). A customer who changes segment takes its entry into the
 * stage it is in along. Gauges (customers in a stage, at risk, churned)
 * are not here: the state script derives them from the stored and the
 * new hash, so they agree with the customers whatever order writes land
 * in.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "map.h"
#include "timestamp.h"

/* A delta of the field made of the parts given, up to a NULL. */
static void
add(struct map_delta *out, int *n, const char *segment, int64_t delta, ...)
{
	struct map_delta	*d = &out[(*n)++];
	const char		*part;
	size_t			 len = 0, plen;
	va_list			 ap;

	d->segment = segment;
	d->delta = delta;
	va_start(ap, delta);
	while ((part = va_arg(ap, const char *)) != NULL) {
		plen = strnlen(part, sizeof(d->field) - 1 - len);
		memcpy(d->field + len, part, plen);
		len += plen;
	}
	va_end(ap);
	d->field[len] = '\0';
}

int
map_time_bucket(int64_t ms)
{
	int	k = 0;

	for (int64_t minutes = ms / 60000; minutes > 0 && k < MAP_BUCKETS - 1;
	    minutes >>= 1)
		k++;
	return k;
}

int64_t
map_bucket_ms(int k)
{
	return k == 0 ? 60000 : (INT64_C(60000) << k);
}

int
map_deltas(const struct journey_model *m, const struct journey_state *s,
    const struct event *ev, const struct journey_result *res,
    struct map_delta out[MAP_DELTAS_MAX])
{
	const char			*seg;
	const char			*stage;
	const struct journey_trait	*trait;
	const struct journey_change	*c;
	char				 bucket[16];
	char				 day[TIMESTAMP_ISO_LEN];
	double				 sentiment;
	int64_t				 spent;
	int				 n = 0;

	if (res->old_stage != JOURNEY_NO_STAGE) {
		stage = m->stage[res->old_stage];
		timestamp_format_iso8601(res->old_since_ms, day);
		day[10] = '\0';
		if (res->old_mseg[0] != '\0') {
			add(out, &n, res->old_mseg, -1, stage, ":entries",
			    NULL);
			add(out, &n, res->old_mseg, -1, stage, ":day:", day,
			    NULL);
		}
		add(out, &n, s->mseg, 1, stage, ":entries", NULL);
		add(out, &n, s->mseg, 1, stage, ":day:", day, NULL);
	}
	for (int i = 0; i < res->nchanges; i++) {
		c = &res->change[i];
		/* replayed, a timer may or may not have come first */
		seg = c->deadline_ms >= 0 ? res->silent_mseg : s->mseg;
		switch (c->kind) {
		case JOURNEY_CHANGE_STAGE:
			add(out, &n, seg, 1, m->stage[c->to], ":entries", NULL);
			/* by day of event time, for entries within a window */
			timestamp_format_iso8601(c->at_ms, day);
			day[10] = '\0';
			add(out, &n, seg, 1, m->stage[c->to], ":day:", day, NULL);
			if (c->from == JOURNEY_NO_STAGE)
				break;
			add(out, &n, seg, 1, m->stage[c->from], ">",
			    m->stage[c->to], NULL);
			/* an event that came late may be older than the entry
			 * into the stage it moves the customer on from: the
			 * time spent there is not known, not "under a minute" */
			if (c->at_ms < c->since_ms)
				break;
			spent = c->at_ms - c->since_ms;
			add(out, &n, seg, spent, m->stage[c->from], ">",
			    m->stage[c->to], ":ms", NULL);
			/* the time to move on, as the conversions: not back */
			if (c->to < c->from)
				break;
			snprintf(bucket, sizeof(bucket), "%d",
			    map_time_bucket(spent));
			add(out, &n, seg, 1, m->stage[c->from], ":left:",
			    bucket, NULL);
			break;
		case JOURNEY_CHANGE_CHURNED:
			add(out, &n, seg, 1, m->stage[c->stage], ":churns",
			    NULL);
			break;
		case JOURNEY_CHANGE_REACTIVATED:
			add(out, &n, seg, 1, m->stage[c->stage],
			    ":reactivations", NULL);
			break;
		case JOURNEY_CHANGE_RISK:
			if (c->to == CHURN_HIGH)
				add(out, &n, seg, 1, m->stage[c->stage],
				    ":high_risk_entries", NULL);
			break;
		}
	}
	if (ev == NULL || res->outcome == JOURNEY_DUPLICATE ||
	    res->outcome == JOURNEY_DUPLICATE_ID)
		return n;
	seg = s->mseg;
	/* no sooner: a duplicate's customer may be of a stage now gone */
	stage = m->stage[s->stage];
	add(out, &n, seg, 1, stage, ":a:", ev->type, NULL);
	if (ev->channel[0] != '\0')
		add(out, &n, seg, 1, stage, ":c:", ev->channel, NULL);
	trait = journey_model_trait(m, ev->type);
	if (journey_event_sentiment(trait, ev, &sentiment)) {
		add(out, &n, seg, 1, stage, ":sent_n", NULL);
		/* integers: HINCRBY is exact where a float sum would drift */
		add(out, &n, seg, (int64_t)lround(1000 * sentiment), stage,
		    ":sent_milli", NULL);
	}
	if (trait != NULL && trait->pain)
		add(out, &n, seg, 1, stage, ":pain:", ev->type, NULL);
	return n;
}
