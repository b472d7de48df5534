/*
 * journey.h: the stage model (ordered stages and the rules that move a
 * customer into each, forward or back) and the per-customer journey state
 * it advances. Pure logic: no I/O, no clocks; time comes from the events.
 */
#ifndef JOURNEYD_JOURNEY_H
#define JOURNEYD_JOURNEY_H

#include <stddef.h>
#include <stdint.h>

#include "churn.h"
#include "event.h"

#define JOURNEY_STAGES_MAX	16
#define JOURNEY_RULES_MAX	256
#define JOURNEY_SOURCES_MAX	4	/* partitions remembered per customer */
#define JOURNEY_SOURCE_MAX	160	/* "topic/partition" */
#define JOURNEY_ACTIONS_MAX	12	/* event types counted per customer */
#define JOURNEY_IDS_MAX		4	/* recent event_ids per customer */
#define JOURNEY_ID_HASH_MASK	UINT64_C(0xfffffffffffff)
#define JOURNEY_CHANNELS_MAX	8	/* channels counted per customer */
#define JOURNEY_NO_STAGE	(-1)
#define JOURNEY_RULE_ERR_MAX	256
#define JOURNEY_TRAITS_MAX	256	/* event types with pain/sentiment */
#define JOURNEY_SEGMENTS_MAX	32	/* segments kept apart in the map */
#define JOURNEY_CHANGES_MAX	8	/* changes one event or tick makes */

enum journey_rule_kind {
	JOURNEY_RULE_EVENT,	/* purchase */
	JOURNEY_RULE_COUNT,	/* purchase >= 2: the customer's count */
	JOURNEY_RULE_PROPERTY,	/* nps.score >= 9: a number on the event */
};

enum journey_op { JOURNEY_OP_GE, JOURNEY_OP_GT, JOURNEY_OP_LE,
	JOURNEY_OP_LT, JOURNEY_OP_EQ };

struct journey_rule {
	char			type[EVENT_NAME_MAX + 1];
	enum journey_rule_kind	kind;
	enum journey_op		op;
	double			threshold;
	/* "value", "sentiment", or a dotted path inside "properties" */
	char			property[EVENT_NAME_MAX + 1];
	int			stage;
	int			demote;	/* moves customers above stage down */
};

/* A property whose values lo..hi stand for sentiment -1..1 (NPS, CSAT). */
struct journey_scale {
	char			property[EVENT_NAME_MAX + 1];	/* "": none */
	double			lo, hi;
};

/* What an event type says about the customer's feelings. */
struct journey_trait {
	char			type[EVENT_NAME_MAX + 1];
	unsigned int		pain:1;		/* a pain point */
	unsigned int		has_sentiment:1;
	/* unless the event has its own: this, or its property scaled */
	double			sentiment;
	struct journey_scale	scale;
};

struct journey_model {
	int			nstages;
	char			stage[JOURNEY_STAGES_MAX][EVENT_NAME_MAX + 1];
	size_t			nrules;
	struct journey_rule	rule[JOURNEY_RULES_MAX];	/* sorted by type */
	size_t			ntraits;
	struct journey_trait	trait[JOURNEY_TRAITS_MAX];	/* sorted too */
	struct churn_params	churn;
	int64_t			cadence_default_ms;
	int64_t			cadence_ms[JOURNEY_STAGES_MAX];	/* 0: default */
	int			nsegments;
	char			segment[JOURNEY_SEGMENTS_MAX][EVENT_NAME_MAX + 1];
};

/* Where an event came from; (source, offset) identifies it for replays. */
struct journey_source {
	char	name[JOURNEY_SOURCE_MAX];	/* "topic/partition" */
	int64_t	offset;				/* last applied offset */
};

struct journey_action {
	char		type[EVENT_NAME_MAX + 1];
	uint64_t	count;
};

struct journey_state {
	int			stage;		/* JOURNEY_NO_STAGE if new */
	/* the stored stage, when the model no longer has it (stage is then
	 * JOURNEY_NO_STAGE): the gauges still count the customer there */
	char			gone_stage[EVENT_NAME_MAX + 1];
	int64_t			stage_at_ms;
	/* when each stage was last entered; 0: never */
	int64_t			entered_ms[JOURNEY_STAGES_MAX];
	int64_t			first_seen_ms;
	int64_t			last_seen_ms;
	uint64_t		events;
	char			last_channel[EVENT_NAME_MAX + 1];
	int			nsources;
	struct journey_source	source[JOURNEY_SOURCES_MAX];
	/* events per type; types beyond the bound are counted in other */
	int			nactions;
	struct journey_action	action[JOURNEY_ACTIONS_MAX];
	uint64_t		other_actions;
	/* events per channel (touchpoints), the rest in other_channels */
	int			nchannels;
	struct journey_action	channel[JOURNEY_CHANNELS_MAX];
	uint64_t		other_channels;
	char			segment[EVENT_NAME_MAX + 1];	/* latest */
	double			value_total;
	/* hashes of the latest event_ids, newest last */
	int			nids;
	uint64_t		recent_id[JOURNEY_IDS_MAX];
	/* emotions, pain points, engagement and the churn risk they give */
	struct churn_signals	risk;
	int64_t			risk_at_ms;	/* when it was last scored */
	/* the map segment it is counted under (the stored one until the
	 * fold runs again: a reload may have changed the segments) */
	char			mseg[EVENT_NAME_MAX + 1];
	/* the partition of the latest event: its deadline index holds us */
	char			home[JOURNEY_SOURCE_MAX];
	/* the score of its entry in home's deadline index: never later than
	 * the next deadline as of this state, so a timer never misses one (0:
	 * no deadline, or a state stored before it was kept) */
	int64_t			indexed_ms;
	/* writes of this state so far: a write expects the stored one */
	uint64_t		version;
};

enum journey_outcome {
	JOURNEY_APPLIED,	/* state changed, no stage change */
	JOURNEY_TRANSITION,	/* state changed and the stage moved */
	JOURNEY_DUPLICATE,	/* already applied (a replay): nothing changed */
	JOURNEY_DUPLICATE_ID,	/* a repeated event_id: only the offset moved */
};

enum journey_change_kind {
	JOURNEY_CHANGE_STAGE,		/* from, to: stages */
	JOURNEY_CHANGE_RISK,		/* from, to: churn levels */
	JOURNEY_CHANGE_CHURNED,		/* from = to = the stage */
	JOURNEY_CHANGE_REACTIVATED,	/* from = to = the stage */
};
#define JOURNEY_CHANGE_KINDS	(JOURNEY_CHANGE_REACTIVATED + 1)

/* One thing that happened to the customer, for alerts and history. */
struct journey_change {
	enum journey_change_kind kind;
	int			from;
	int			to;
	int			stage;		/* the customer's, after it */
	int64_t			at_ms;
	int64_t			since_ms;	/* stage: when from was entered */
	/* silence until this deadline caused it; -1: the event did */
	int64_t			deadline_ms;
	double			score;
	char			reasons[CHURN_REASONS_MAX];
};

struct journey_result {
	enum journey_outcome	outcome;
	int			from;	/* JOURNEY_NO_STAGE for a new customer */
	int			to;
	/* the map segment of the silence: the changes a deadline caused
	 * count in it, whether a timer or the next event settled them
	 * (NULL when there are none) */
	const char		*silent_mseg;
	/* the customer left map segment old_mseg while in stage old_stage
	 * (else JOURNEY_NO_STAGE): the entry into it, made at old_since_ms,
	 * moves with it to the new segment (old_mseg is empty for a state
	 * stored before the map existed: the entry was counted nowhere) */
	char			old_mseg[EVENT_NAME_MAX + 1];
	int			old_stage;
	int64_t			old_since_ms;
	int			nchanges;	/* in the order they happened */
	struct journey_change	change[JOURNEY_CHANGES_MAX];
};

/*
 * One alternative of a rule, as written in the config (see README "Stage
 * rules"): TYPE, TYPE OP NUMBER, or TYPE.PROPERTY OP NUMBER, OP one of
 * >= > <= < =. Returns -1 with a reason.
 */
int	journey_rule_parse(const char *text, struct journey_rule *r,
	    char err[JOURNEY_RULE_ERR_MAX]);

/* Model building, used by the config parser. */
void	journey_model_init(struct journey_model *m);
/* forgets stages and rules (a config's own stages replace the default) */
void	journey_model_clear_stages(struct journey_model *m);
int	journey_model_add_stage(struct journey_model *m, const char *name);
/* -1: no room, or a plain TYPE rule already leads elsewhere */
int	journey_model_add_rule(struct journey_model *m,
	    const struct journey_rule *r);
void	journey_model_finish(struct journey_model *m);
int	journey_model_stage_index(const struct journey_model *m,
	    const char *name);
/* the stage a plain TYPE promotion rule leads to, or JOURNEY_NO_STAGE */
int	journey_model_stage_of(const struct journey_model *m,
	    const char *type);

/* Event-type traits, used by the config parser. -1: no room. */
int	journey_model_set_pain(struct journey_model *m, const char *type,
	    int pain);
/* "PROPERTY LO..HI" (score 0..10): -1 with why in err */
int	journey_scale_parse(const char *text, struct journey_scale *sc,
	    char err[JOURNEY_RULE_ERR_MAX]);
int	journey_model_set_sentiment_scale(struct journey_model *m,
	    const char *type, const struct journey_scale *sc);
int	journey_model_set_sentiment(struct journey_model *m, const char *type,
	    double sentiment);
void	journey_model_clear_pain(struct journey_model *m);
const struct journey_trait *journey_model_trait(
	    const struct journey_model *m, const char *type);
int	journey_model_add_segment(struct journey_model *m, const char *name);
/* every segment the map has: the configured ones, then "other" */
int	journey_model_map_segments(const struct journey_model *m,
	    const char *out[JOURNEY_SEGMENTS_MAX + 1]);
/* the segment a customer's own segment is counted under in the map */
const char *journey_model_map_segment(const struct journey_model *m,
	    const char *segment);
int64_t	journey_model_cadence(const struct journey_model *m, int stage);
/*
 * A hash of what a customer's next deadline is computed from (the churn
 * settings, each stage's cadence): two models with the same tag give
 * every customer the same deadline.
 */
uint64_t journey_model_deadline_tag(const struct journey_model *m);
/* whether the alert kind of a change is sent (risk falls are not) */
int	journey_change_alerts(const struct journey_change *c);
const char *journey_change_kind_name(enum journey_change_kind kind);

/*
 * The sentiment an event tells, 1 if it tells one: its own, else its
 * type's (t, journey_model_trait's, NULL for none; sentiment.TYPE), fixed
 * or scaled from a property it carries.
 */
int	journey_event_sentiment(const struct journey_trait *t,
	    const struct event *ev, double *sentiment);
/* the hash under which an event_id is remembered (never 0) */
uint64_t journey_id_hash(const char *id);
void	journey_state_init(struct journey_state *s);
/*
 * Folds one event into s. Deadlines the customer's silence reached before
 * the event are settled first, exactly as a timer would have settled them.
 * The deadline index entry (indexed_ms) moves only when the new deadline
 * is earlier than it, or it is not ahead of the event.
 */
int	journey_apply(const struct journey_model *m, struct journey_state *s,
	    const struct event *ev, const char *source, int64_t offset,
	    struct journey_result *res);
/*
 * Settles every deadline up to now (a timer's work); never fails. The
 * customer's deadline index entry, which fell due, moves to the next one.
 */
void	journey_settle(const struct journey_model *m, struct journey_state *s,
	    int64_t now, struct journey_result *res);
/* The reasons of the risk s was last scored at, as its changes give them. */
void	journey_risk_reasons(const struct journey_model *m,
	    const struct journey_state *s, char out[CHURN_REASONS_MAX]);
/* The next deadline of s (CHURN_NEVER: none). */
int64_t	journey_deadline(const struct journey_model *m,
	    const struct journey_state *s);

#endif
