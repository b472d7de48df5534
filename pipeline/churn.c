/*
 * churn.c: the churn-risk score, its levels and its deadlines.
 *
 * score = sum(weight[i] * component[i]) / sum(weight), each component in
 * [0, 1]:
 *   inactivity  0 up to one cadence of silence, rising linearly to 1 at
 *               CHURN_INACTIVE_FULL cadences;
 *   pain        decayed pain points / CHURN_PAIN_FULL, at most 1;
 *   sentiment   minus the decayed average sentiment, when it is negative;
 *   engagement  how far the decayed event count has fallen from its peak.
 * Only inactivity depends on the clock; the decayed signals are kept as
 * of the customer's latest event. So between events the score can only
 * rise, and the moment silence alone crosses the next threshold is found
 * in closed form: no polling of customers, one deadline each.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "churn.h"
#include "timestamp.h"

/* scores at a threshold count as reaching it despite rounding */
#define SCORE_EPSILON	1e-12

static const char *const level_name[CHURN_LEVELS] = { "low", "medium",
	"high" };

void
churn_params_default(struct churn_params *p)
{
	memset(p, 0, sizeof(*p));
	p->after_ms = INT64_C(90) * 86400 * 1000;
	p->half_life_ms = INT64_C(30) * 86400 * 1000;
	p->weight[CHURN_INACTIVITY] = 0.5;
	p->weight[CHURN_PAIN] = 0.25;
	p->weight[CHURN_SENTIMENT] = 0.15;
	p->weight[CHURN_ENGAGEMENT] = 0.1;
	p->threshold[CHURN_MEDIUM] = 0.3;
	p->threshold[CHURN_HIGH] = 0.5;
	p->hysteresis = 0.1;
}

void
churn_signals_init(struct churn_signals *s)
{
	memset(s, 0, sizeof(*s));
	s->churned_ms = CHURN_NOT_CHURNED;
}

static double
decay(const struct churn_params *p, int64_t dt_ms)
{
	return exp2(-(double)dt_ms / (double)p->half_life_ms);
}

void
churn_observe(const struct churn_params *p, struct churn_signals *s,
    int64_t ts, int pain, int has_sentiment, double sentiment)
{
	double	w = 1.0, f;

	if (ts >= s->at_ms) {
		f = decay(p, ts - s->at_ms);
		s->sentiment_w *= f;
		s->sentiment_ws *= f;
		s->pain *= f;
		s->engagement *= f;
		s->at_ms = ts;
	} else		/* a late event weighs what it would weigh by now */
		w = decay(p, s->at_ms - ts);
	s->engagement += w;
	if (pain)
		s->pain += w;
	if (has_sentiment) {
		s->sentiment_w += w;
		s->sentiment_ws += w * sentiment;
	}
	if (s->engagement > s->engagement_peak)
		s->engagement_peak = s->engagement;
}

double
churn_sentiment(const struct churn_signals *s, int *has)
{
	*has = s->sentiment_w > 1e-12;
	return *has ? s->sentiment_ws / s->sentiment_w : 0.0;
}

static double
clamp01(double v)
{
	return v < 0 ? 0 : v > 1 ? 1 : v;
}

static double
weight_total(const struct churn_params *p)
{
	double	t = 0;

	for (int i = 0; i < CHURN_COMPONENTS; i++)
		t += p->weight[i];
	return t;
}

void
churn_score(const struct churn_params *p, const struct churn_signals *s,
    int64_t cadence_ms, int64_t last_seen, int64_t now,
    struct churn_score *out)
{
	double	total = weight_total(p), ratio;

	memset(out, 0, sizeof(*out));
	out->cadence_ms = cadence_ms;
	out->silent_ms = now > last_seen ? now - last_seen : 0;
	ratio = (double)out->silent_ms / (double)cadence_ms;
	out->component[CHURN_INACTIVITY] = clamp01((ratio - 1) /
	    (CHURN_INACTIVE_FULL - 1));
	out->pain = s->pain;
	out->component[CHURN_PAIN] = clamp01(s->pain / CHURN_PAIN_FULL);
	out->sentiment = churn_sentiment(s, &out->has_sentiment);
	out->component[CHURN_SENTIMENT] = clamp01(-out->sentiment);
	if (s->engagement_peak > 0)
		out->component[CHURN_ENGAGEMENT] = clamp01(1 - s->engagement /
		    s->engagement_peak);
	for (int i = 0; i < CHURN_COMPONENTS && total > 0; i++)
		out->score += p->weight[i] * out->component[i] / total;
}

int
churn_level_for(const struct churn_params *p, int current, double score)
{
	int	target = CHURN_LOW;

	for (int l = CHURN_MEDIUM; l < CHURN_LEVELS; l++)
		if (score >= p->threshold[l] - SCORE_EPSILON)
			target = l;
	if (target >= current)
		return target;
	/* a level is left only well below its threshold: no flapping */
	while (current > CHURN_LOW &&
	    score < p->threshold[current] - p->hysteresis)
		current--;
	return current;
}

int64_t
churn_next_deadline(const struct churn_params *p,
    const struct churn_signals *s, int64_t cadence_ms, int64_t last_seen)
{
	struct churn_score	sc;
	double			total = weight_total(p), rest, need;
	int64_t			deadline = CHURN_NEVER, t;

	if (s->churned_ms != CHURN_NOT_CHURNED)
		return CHURN_NEVER;
	if (p->after_ms > 0)
		deadline = last_seen + p->after_ms;
	if (s->level == CHURN_HIGH || p->weight[CHURN_INACTIVITY] <= 0)
		return deadline;
	/* what the other components give does not change in silence */
	churn_score(p, s, cadence_ms, last_seen, last_seen, &sc);
	rest = sc.score;
	need = (p->threshold[s->level + 1] - rest) * total /
	    p->weight[CHURN_INACTIVITY];
	if (need > 1 + SCORE_EPSILON)
		return deadline;	/* silence alone never gets there */
	if (need < 0)
		need = 0;
	t = last_seen + (int64_t)ceil((double)cadence_ms *
	    (1 + need * (CHURN_INACTIVE_FULL - 1)));
	return t < deadline ? t : deadline;
}

/* a component below this is too small to be a reason ("0.0 pain points") */
#define REASON_FLOOR	0.05

void
churn_reasons(const struct churn_score *sc, int64_t churned_after_ms,
    char out[CHURN_REASONS_MAX])
{
	char	silent[24], cadence[24];
	size_t	n = 0;

	out[0] = '\0';
	timestamp_format_duration(sc->silent_ms, silent, sizeof(silent));
	if (sc->component[CHURN_INACTIVITY] > 0) {
		timestamp_format_duration(sc->cadence_ms, cadence,
		    sizeof(cadence));
		n += (size_t)snprintf(out + n, CHURN_REASONS_MAX - n,
		    "inactive %s, cadence %s", silent, cadence);
	} else if (churned_after_ms > 0) {
		/* churned within a cadence: the silence is still the reason */
		timestamp_format_duration(churned_after_ms, cadence,
		    sizeof(cadence));
		n += (size_t)snprintf(out + n, CHURN_REASONS_MAX - n,
		    "inactive %s, churned after %s", silent, cadence);
	}
	if (sc->component[CHURN_PAIN] >= REASON_FLOOR && n < CHURN_REASONS_MAX)
		n += (size_t)snprintf(out + n, CHURN_REASONS_MAX - n,
		    "%s%.1f pain points", n ? "; " : "", sc->pain);
	if (sc->component[CHURN_SENTIMENT] >= REASON_FLOOR &&
	    n < CHURN_REASONS_MAX)
		n += (size_t)snprintf(out + n, CHURN_REASONS_MAX - n,
		    "%ssentiment %.2f", n ? "; " : "", sc->sentiment);
	if (sc->component[CHURN_ENGAGEMENT] >= REASON_FLOOR &&
	    n < CHURN_REASONS_MAX)
		snprintf(out + n, CHURN_REASONS_MAX - n,
		    "%sengagement down %.0f%% from peak", n ? "; " : "",
		    100 * sc->component[CHURN_ENGAGEMENT]);
}

int64_t
churn_clock_now(int event_clock, int64_t wall_ms, int64_t latest_event_ms,
    int64_t lateness_ms)
{
	if (!event_clock)
		return wall_ms;
	/*
	 * An event may still come at latest - lateness, and a deadline at
	 * its very time is the event's to settle (it settles those before
	 * it): a timer that took it would give another result.
	 */
	return latest_event_ms < 0 ? -1 : latest_event_ms - lateness_ms - 1;
}

const char *
churn_level_name(int level)
{
	return level >= 0 && level < CHURN_LEVELS ? level_name[level] : "low";
}
