/*
 * journey.h: the stage model (ordered stages and the rules that move a
 * customer into each, forward or back) and the per-customer journey state
 * it advances. Pure logic: no I/O, no clocks; time comes from the events.
 */
#ifndef JOURNEYD_JOURNEY_H
#define JOURNEYD_JOURNEY_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define JOURNEY_STAGES_MAX	16
#define JOURNEY_RULES_MAX	256
#define JOURNEY_SOURCES_MAX	4	/* partitions remembered per customer */
#define JOURNEY_SOURCE_MAX	160	/* "topic/partition" */
#define JOURNEY_ACTIONS_MAX	12	/* event types counted per customer */
#define JOURNEY_IDS_MAX		4	/* recent event_ids per customer */
#define JOURNEY_CHANNELS_MAX	8	/* channels counted per customer */
#define JOURNEY_NO_STAGE	(-1)
#define JOURNEY_RULE_ERR_MAX	256

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

struct journey_model {
	int			nstages;
	char			stage[JOURNEY_STAGES_MAX][EVENT_NAME_MAX + 1];
	size_t			nrules;
	struct journey_rule	rule[JOURNEY_RULES_MAX];	/* sorted by type */
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
	int64_t			stage_at_ms;
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
};

enum journey_outcome {
	JOURNEY_APPLIED,	/* state changed, no stage change */
	JOURNEY_TRANSITION,	/* state changed and the stage moved */
	JOURNEY_DUPLICATE,	/* already applied (a replay): nothing changed */
	JOURNEY_DUPLICATE_ID,	/* a repeated event_id: only the offset moved */
};

struct journey_result {
	enum journey_outcome	outcome;
	int			from;	/* JOURNEY_NO_STAGE for a new customer */
	int			to;
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

/* the hash under which an event_id is remembered (never 0) */
uint64_t journey_id_hash(const char *id);
void	journey_state_init(struct journey_state *s);
int	journey_apply(const struct journey_model *m, struct journey_state *s,
	    const struct event *ev, const char *source, int64_t offset,
	    struct journey_result *res);

#endif
