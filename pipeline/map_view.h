/*
 * map_view.h: the journey map as people read it, computed from the
 * counters of one or more segments' map hashes: per stage the customers
 * in it, entries, conversion onward and the median time to move on, the
 * top actions, touchpoints and pain points, the average sentiment (the
 * emotion curve), at-risk and churned customers; and the opportunities:
 * the stage with the worst drop-off, the slowest and the unhappiest.
 * Pure logic; journeyctl prints it, the HTTP endpoint serves it.
 */
#ifndef JOURNEYD_MAP_VIEW_H
#define JOURNEYD_MAP_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "journey.h"
#include "map.h"

#define MAP_VIEW_TOP		5

struct map_view_count {
	char		name[EVENT_NAME_MAX + 1];
	int64_t		count;
};

/*
 * Every name of a stage's actions, touchpoints or pain points: as many as
 * the map's hashes hold (a top list must see them all), each segment's
 * count of a name added up by map_view_list_finish, which also puts the
 * largest first.
 */
struct map_view_list {
	size_t			 n, cap;
	struct map_view_count	*item;
};

struct map_view_stage {
	int64_t			in, entries, at_risk, high_risk, churned;
	int64_t			moved_on;	/* moves to any later stage */
	int64_t			moved_on_ms;	/* their total time here */
	int64_t			left[MAP_BUCKETS];
	int64_t			sent_milli, sent_n;
	int64_t			pain_total;
	int64_t			next[JOURNEY_STAGES_MAX];	/* moves to stage */
	struct map_view_list	actions, channels, pains;
	/* entries by day (days since the epoch), for windows */
	size_t			ndays, days_cap;
	int32_t			*day;
	int64_t			*day_entries;
	/* computed by map_view_finish */
	int64_t			entries_window;	/* entries in the window */
	double			conversion;	/* moved_on / entries; -1: none */
	int64_t			median_ms;	/* to move on; -1: none moved */
	double			sentiment;	/* average; valid if sent_n */
};

enum map_view_opportunity { MAP_VIEW_DROPOFF, MAP_VIEW_SLOWEST,
	MAP_VIEW_UNHAPPIEST, MAP_VIEW_OPPORTUNITIES };

struct map_view {
	const struct journey_model	*model;
	struct map_view_stage		 stage[JOURNEY_STAGES_MAX];
	/* the stage that earned each, or -1 */
	int				 opportunity[MAP_VIEW_OPPORTUNITIES];
	int				 window_days;	/* 0: all time */
	int32_t				 last_day;	/* of any entry; -1 */
};

/* window_days: the entries_window figures count that many days up to
 * the latest day with an entry (0: all time). */
void	map_view_init(struct map_view *v, const struct journey_model *m,
	    int window_days);
void	map_view_free(struct map_view *v);
/*
 * Adds one field of a map hash (fields it does not know are skipped);
 * -1 when out of memory.
 */
int	map_view_add(struct map_view *v, const char *field, size_t flen,
	    const char *value, size_t vlen);
void	map_view_finish(struct map_view *v);
/* The entries_window figures of a finished view for another window. */
void	map_view_set_window(struct map_view *v, int window_days);
/*
 * Adds x to a sum of counters (of several segments, days or names): each
 * is a Redis integer, but their sum may pass what one holds (damaged ones,
 * or milliseconds over many customers), so it stops at the bound.
 */
void	map_view_count_add(int64_t *sum, int64_t x);
/* 0, or -1 when out of memory */
int	map_view_list_add(struct map_view_list *l, const char *name,
	    size_t len, int64_t n);
void	map_view_list_finish(struct map_view_list *l);
void	map_view_list_free(struct map_view_list *l);
/* the n largest of a finished list into out; how many there were */
int	map_view_top(const struct map_view_list *l, int n,
	    struct map_view_count *out);
const char *map_view_opportunity_name(enum map_view_opportunity o);
/* The view as JSON (the /api/map document); NULL on allocation failure. */
json_t	*map_view_json(const struct map_view *v, const char *segment);

#endif
