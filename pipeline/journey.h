/*
 * journey.h: the stage model (ordered stages and the event types that put
 * a customer in each) and the per-customer journey state it advances.
 * Pure logic: no I/O, no clocks; time comes from the events.
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
#define JOURNEY_NO_STAGE	(-1)

struct journey_rule {
	char	type[EVENT_NAME_MAX + 1];
	int	stage;
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

struct journey_state {
	int			stage;		/* JOURNEY_NO_STAGE if new */
	int64_t			stage_at_ms;
	int64_t			first_seen_ms;
	int64_t			last_seen_ms;
	uint64_t		events;
	char			last_channel[EVENT_NAME_MAX + 1];
	int			nsources;
	struct journey_source	source[JOURNEY_SOURCES_MAX];
};

enum journey_outcome {
	JOURNEY_APPLIED,	/* state changed, no stage change */
	JOURNEY_TRANSITION,	/* state changed and the stage moved */
	JOURNEY_DUPLICATE,	/* already applied (a replay): nothing changed */
};

struct journey_result {
	enum journey_outcome	outcome;
	int			from;	/* JOURNEY_NO_STAGE for a new customer */
	int			to;
};

/* Model building, used by the config parser. */
void	journey_model_init(struct journey_model *m);
int	journey_model_add_stage(struct journey_model *m, const char *name);
int	journey_model_add_rule(struct journey_model *m, int stage,
	    const char *type);
void	journey_model_finish(struct journey_model *m);
int	journey_model_stage_index(const struct journey_model *m,
	    const char *name);
/* the stage an event type leads to, or JOURNEY_NO_STAGE */
int	journey_model_stage_of(const struct journey_model *m,
	    const char *type);

void	journey_state_init(struct journey_state *s);
int	journey_apply(const struct journey_model *m, struct journey_state *s,
	    const struct event *ev, const char *source, int64_t offset,
	    struct journey_result *res);

#endif
