/*
 * map.c: the counters of the journey map that events move, per stage and
 * segment. An event counts in the stage the customer is in after it (its
 * action, channel, sentiment and pain point); a stage change counts an
 * entry into the new stage and a conversion from the old one, with the
 * time it took (and the day it happened, so a window of days can be
 * read back). Gauges (customers in a stage, at risk, churned) are not
 * here: the state script derives them from the stored and the new hash,
 * so they agree with the customers whatever order writes land in.
 */
#include <math.h>
#include <stdio.h>

#include "map.h"
#include "timestamp.h"

static void
add(struct map_delta *out, int *n, const char *segment, int64_t delta,
    const char *fmt, const char *a, const char *b)
{
	struct map_delta	*d = &out[(*n)++];

	d->segment = segment;
	d->delta = delta;
	snprintf(d->field, sizeof(d->field), fmt, a, b);
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
	const char			*seg = s->mseg;
	const char			*stage = m->stage[s->stage];
	const struct journey_trait	*trait;
	const struct journey_change	*c;
	char				 bucket[16];
	char				 day[TIMESTAMP_ISO_LEN];
	int				 n = 0;

	for (int i = 0; i < res->nchanges; i++) {
		c = &res->change[i];
		switch (c->kind) {
		case JOURNEY_CHANGE_STAGE:
			add(out, &n, seg, 1, "%s:entries", m->stage[c->to], "");
			/* by day of event time, for entries within a window */
			timestamp_format_iso8601(c->at_ms, day);
			day[10] = '\0';
			add(out, &n, seg, 1, "%s:day:%s", m->stage[c->to], day);
			if (c->from == JOURNEY_NO_STAGE)
				break;
			add(out, &n, seg, 1, "%s>%s", m->stage[c->from],
			    m->stage[c->to]);
			add(out, &n, seg, c->at_ms - c->since_ms, "%s>%s:ms",
			    m->stage[c->from], m->stage[c->to]);
			snprintf(bucket, sizeof(bucket), "%d",
			    map_time_bucket(c->at_ms - c->since_ms));
			add(out, &n, seg, 1, "%s:left:%s", m->stage[c->from],
			    bucket);
			break;
		case JOURNEY_CHANGE_CHURNED:
			add(out, &n, seg, 1, "%s:churns", m->stage[c->stage],
			    "");
			break;
		case JOURNEY_CHANGE_REACTIVATED:
			add(out, &n, seg, 1, "%s:reactivations",
			    m->stage[c->stage], "");
			break;
		case JOURNEY_CHANGE_RISK:
			if (c->to == CHURN_HIGH)
				add(out, &n, seg, 1, "%s:high_risk_entries",
				    m->stage[c->stage], "");
			break;
		}
	}
	if (ev == NULL || res->outcome == JOURNEY_DUPLICATE ||
	    res->outcome == JOURNEY_DUPLICATE_ID)
		return n;
	add(out, &n, seg, 1, "%s:a:%s", stage, ev->type);
	if (ev->channel[0] != '\0')
		add(out, &n, seg, 1, "%s:c:%s", stage, ev->channel);
	trait = journey_model_trait(m, ev->type);
	if (ev->has_sentiment || (trait != NULL && trait->has_sentiment)) {
		add(out, &n, seg, 1, "%s:sent_n", stage, "");
		/* integers: HINCRBY is exact where a float sum would drift */
		add(out, &n, seg, (int64_t)lround(1000 * (ev->has_sentiment ?
		    ev->sentiment : trait->sentiment)), "%s:sent_milli", stage,
		    "");
	}
	if (trait != NULL && trait->pain)
		add(out, &n, seg, 1, "%s:pain:%s", stage, ev->type);
	return n;
}
