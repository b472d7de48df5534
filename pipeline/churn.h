/*
 * churn.h: the churn-risk model: a customer's emotions, pain points and
 * engagement as time-decayed signals, the risk score they give together
 * with inactivity, its levels (with hysteresis), and the next moment the
 * level would rise, or the customer churn, if nothing else happened.
 * Pure logic: time is always passed in. See README "Churn risk".
 */
#ifndef JOURNEYD_CHURN_H
#define JOURNEYD_CHURN_H

#include <stddef.h>
#include <stdint.h>

#define CHURN_REASONS_MAX	160
#define CHURN_NEVER		INT64_MAX	/* no deadline */
#define CHURN_NOT_CHURNED	(-1)
/* inactivity reaches its full weight after this many cadences */
#define CHURN_INACTIVE_FULL	3.0
/* the pain component is full at this many (decayed) pain points */
#define CHURN_PAIN_FULL		3.0

enum churn_level { CHURN_LOW, CHURN_MEDIUM, CHURN_HIGH, CHURN_LEVELS };

enum churn_component { CHURN_INACTIVITY, CHURN_PAIN, CHURN_SENTIMENT,
	CHURN_ENGAGEMENT, CHURN_COMPONENTS };

struct churn_params {
	int64_t	after_ms;		/* silence that makes churned; 0 never */
	int64_t	half_life_ms;		/* of sentiment, pain, engagement */
	double	weight[CHURN_COMPONENTS];
	double	threshold[CHURN_LEVELS];	/* to enter medium, high */
	double	hysteresis;		/* below threshold by this to leave */
};

/*
 * Decayed sums as of at_ms, the customer's latest event time: silence
 * changes none of them, only inactivity grows, so the score rises
 * monotonically between events and its deadlines are exact.
 */
struct churn_signals {
	int64_t	at_ms;
	double	sentiment_w;		/* decayed weight of sentiment samples */
	double	sentiment_ws;		/* decayed weighted sum */
	double	pain;			/* decayed count of pain points */
	double	engagement;		/* decayed count of events */
	double	engagement_peak;
	int	level;			/* enum churn_level */
	double	score;			/* at the last evaluation */
	int64_t	churned_ms;		/* CHURN_NOT_CHURNED, or when */
};

struct churn_score {
	double	score;
	double	component[CHURN_COMPONENTS];	/* each in [0, 1] */
	int64_t	silent_ms;
	int64_t	cadence_ms;
	double	pain;
	double	sentiment;
	int	has_sentiment;
};

void	churn_params_default(struct churn_params *p);
void	churn_signals_init(struct churn_signals *s);
/* One event at ts: a pain point or not, and its sentiment if it has one. */
void	churn_observe(const struct churn_params *p, struct churn_signals *s,
	    int64_t ts, int pain, int has_sentiment, double sentiment);
double	churn_sentiment(const struct churn_signals *s, int *has);
/* The score at now for a customer last seen at last_seen. */
void	churn_score(const struct churn_params *p, const struct churn_signals *s,
	    int64_t cadence_ms, int64_t last_seen, int64_t now,
	    struct churn_score *out);
/* The level a score gives a customer now at level current. */
int	churn_level_for(const struct churn_params *p, int current,
	    double score);
/*
 * The earliest time after last_seen at which silence alone raises the
 * level or makes the customer churned; CHURN_NEVER when neither can.
 */
int64_t	churn_next_deadline(const struct churn_params *p,
	    const struct churn_signals *s, int64_t cadence_ms,
	    int64_t last_seen);
/*
 * "inactive 41d, cadence 12d; 2.0 pain points; sentiment -0.60": the
 * components of at least 0.05. churned_after_ms: churn.after, for a
 * churned customer (0 otherwise), whose silence is a reason even within
 * a cadence.
 */
void	churn_reasons(const struct churn_score *sc, int64_t churned_after_ms,
	    char out[CHURN_REASONS_MAX]);
/*
 * Now by the configured clock: the wall clock, or stream time (just
 * before the latest event time seen minus the allowed lateness, the
 * earliest an event may still bring; -1 before any event).
 */
int64_t	churn_clock_now(int event_clock, int64_t wall_ms,
	    int64_t latest_event_ms, int64_t lateness_ms);
const char *churn_level_name(int level);

#endif
