/*
 * deadlines.c: finds the customers whose silence has reached a deadline
 * (a rise of churn risk, or churn) without any event of theirs, and hands
 * them to the batch pipeline. It owns the scan timer, the sweeps of the
 * index and the per-partition stream clocks.
 *
 * The state script keeps each customer's next deadline in a sorted set per
 * Kafka partition (<prefix>due:TOPIC/PARTITION), so an instance reads only
 * the partitions it owns, and each read is a range of the sorted set from
 * its start: O(log N) however many customers there are, and nothing is
 * held in memory between scans. The scan runs every SCAN_INTERVAL_MS; one
 * runs at a time, and the next starts once the batch of what it found is
 * durable, so a customer is never queued twice.
 *
 * It reads on the reader, like the loads, so that timers are not held up
 * by state writes in flight when Redis is slow. What it may miss is
 * harmless: an entry such a write brings forward is found by the next
 * scan, and one it moves on (or removes) is found where it was: its
 * customer, in memory until that write lands, settles to nothing due.
 *
 * "Now" is this machine's clock (clock = wall), or per partition the
 * latest event time applied from it minus clock.lateness (clock = event),
 * so a replay of history falls due exactly where the live stream did.
 * Each state write stores, beside the partition's watermark, the clock its
 * events leave (<prefix>clocks), and whoever is assigned the partition
 * starts from it. When Redis is lost, the events in flight are abandoned,
 * and each clock goes back to the latest time of its events that are
 * durable: one their events had moved would find due, before their
 * replay, customers they keep from being due. If the Redis that answers
 * again is another process (restarted), what it acknowledged last may be
 * gone too: the clocks start again from what it stored, as the partitions
 * are assigned again.
 *
 * An entry is where the model of the write that placed it put the
 * deadline. When the churn settings or cadences change (a reload, or a
 * restart with an edited file), deadlines may come before the entries
 * that stand for them, and those customers would be found at their old
 * time. So <prefix>due_model records, per partition, the deadline tag
 * (journey_model_deadline_tag) its index was last swept with. An owner
 * whose tag differs sweeps the index: each scan also takes a page of the
 * entries still ahead of now, after a cursor in the sorted set's order,
 * and hands those customers over as due, up to the last entry the index
 * held when the sweep began (those placed since were placed by the
 * settings in force, and a steady stream of new customers would
 * otherwise keep the sweep from ending). Settled under the new model,
 * each entry moves to its deadline if that is earlier (one that is later
 * stays, to be found early as usual). Once the batch of the last page is
 * durable the tag is recorded. What a sweep was doing when its instance
 * stopped, lost the partition or found Redis restarted is done again
 * from the first entry.
 *
 * Before the first write under settings other than those an index was
 * swept with (at a reload, and when a partition is assigned), its tag is
 * replaced with one no settings give (UNSWEPT_TAG). Else, were the
 * settings to go back before the sweep ended, the index would still bear
 * their tag, and the entries placed meanwhile, at the other settings'
 * deadlines, would never be swept: their customers found hours late.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

#define SCAN_INTERVAL_MS	200
/*
 * A scan brings a quarter of max_inflight due customers at most, shared
 * between the partitions owned (at least one each, so more when there
 * are more partitions than that; at most 500 each): they sit in flight
 * beside the events, and 500 from each of many partitions made memory
 * follow how many partitions an instance owns.
 */
#define SCAN_SHARE		4
#define SCAN_PARTITION_MAX	500
#define KEY_LEN			(CONFIG_PREFIX_MAX + JOURNEY_SOURCE_MAX + 8)
#define TAG_LEN			17	/* 16 hex digits */
#define UNSWEPT_TAG		"unswept"

/*
 * A page of the index after a cursor, in the sorted set's order (score,
 * then the member's bytes): the ranks of the entries ahead of now, or of
 * those after (ARGV[1], ARGV[2]) found by a binary search among the ties
 * of ARGV[1]. Ranks, because entries share scores (customers silent since
 * the same moment); bytes compared one by one, because Lua's string
 * order follows the server's locale.
 */
static const char page_script[] =
    "local key, after, id = KEYS[1], ARGV[1], ARGV[2]\n"
    "local function not_after(m)\n"
    "  for i = 1, math.min(#m, #id) do\n"
    "    local a, b = m:byte(i), id:byte(i)\n"
    "    if a ~= b then return a < b end\n"
    "  end\n"
    "  return #m <= #id\n"
    "end\n"
    "local lo\n"
    "if tonumber(after) <= tonumber(ARGV[3]) then\n"
    "  lo = redis.call('ZCOUNT', key, '-inf', ARGV[3])\n"
    "else\n"
    "  lo = redis.call('ZCOUNT', key, '-inf', '(' .. after)\n"
    "  local hi = lo + redis.call('ZCOUNT', key, after, after)\n"
    "  while lo < hi do\n"
    "    local mid = math.floor((lo + hi) / 2)\n"
    "    if not_after(redis.call('ZRANGE', key, mid, mid)[1]) then\n"
    "      lo = mid + 1\n"
    "    else\n"
    "      hi = mid\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return redis.call('ZRANGE', key, lo, lo + tonumber(ARGV[4]) - 1,\n"
    "  'WITHSCORES')\n";
static int	page_script_id;

/* KEYS[1] the tags; ARGV: the partition, the running settings' tag. */
static const char mark_script[] =
    "if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then\n"
    "  redis.call('HSET', KEYS[1], ARGV[1], '" UNSWEPT_TAG "')\n"
    "end\n";
static int	mark_script_id;

enum sweep_phase {
	SWEEP_ASK,		/* the partition's tag is to be read */
	SWEEP_ASKED,
	SWEEP_RUNNING,
	SWEEP_DONE
};

/* The sweep of one partition's index. */
struct sweep {
	char		 source[JOURNEY_SOURCE_MAX];
	char		 tag[TAG_LEN];		/* the running one's, at start */
	enum sweep_phase phase;
	/* what is left: the entries after this one (ms -1: ahead of now) */
	int64_t		 after_ms;
	char		 after_id[EVENT_CUSTOMER_MAX + 1];
	/*
	 * up to the last entry when the sweep began: those placed since
	 * were placed by the settings in force
	 */
	int64_t		 end_ms;
	char		 end_id[EVENT_CUSTOMER_MAX + 1];
	/* the tag read, for on_last to decide; found_tag: it ("": none) */
	int		 stale;
	char		 found_tag[TAG_LEN];
	/* this scan's page: its limit, its last entry, whether it ended */
	int		 limit;
	int		 paged;
	int		 ended;
	int64_t		 next_ms;
	char		 next_id[EVENT_CUSTOMER_MAX + 1];
};

struct stream_clock {
	char	source[JOURNEY_SOURCE_MAX];	/* "topic/partition" */
	int64_t	latest_ms;			/* latest event time */
	int64_t	durable_ms;	/* the same, of events durable; -1: none */
};

struct deadlines {
	struct event		*scan_ev;
	int			 scanning;	/* replies or a batch to come */
	int			 replies_pending;
	int			 full;		/* a partition had more due */
	/* the due customers found by this scan, and each one's now */
	size_t			 n, cap;
	char			**id;
	int64_t			*now_ms;
	const char		**source;	/* into scan_source */
	/*
	 * per partition: this scan's source, now and how many due customers
	 * it asked for; the event-time clocks
	 */
	size_t			 nscan_now;
	int64_t			*scan_now_ms;
	int			*scan_due;
	char			(*scan_source)[JOURNEY_SOURCE_MAX];
	size_t			 nclocks;
	struct stream_clock	*clock;
	size_t			 last_clock;	/* events come in runs */
	uint64_t		 scan_generation;	/* of the assignment */
	/* the sweeps of the partitions owned, as of sweep_generation */
	size_t			 nsweeps;
	struct sweep		*sweep;
	uint64_t		 sweep_generation;
};

static struct stream_clock *
find_clock(struct deadlines *dl, const char *source)
{
	if (dl->last_clock < dl->nclocks &&
	    strcmp(dl->clock[dl->last_clock].source, source) == 0)
		return &dl->clock[dl->last_clock];
	for (size_t i = 0; i < dl->nclocks; i++)
		if (strcmp(dl->clock[i].source, source) == 0) {
			dl->last_clock = i;
			return &dl->clock[i];
		}
	return NULL;
}

/* The clock of source, new (not started) if it had none. */
static struct stream_clock *
clock_of(struct deadlines *dl, const char *source)
{
	struct stream_clock	*c, *grown;

	if ((c = find_clock(dl, source)) != NULL)
		return c;
	if ((grown = reallocarray(dl->clock, dl->nclocks + 1,
	    sizeof(*dl->clock))) == NULL)
		fatal("stream clocks");
	dl->clock = grown;
	c = &dl->clock[dl->nclocks++];
	snprintf(c->source, sizeof(c->source), "%s", source);
	c->latest_ms = c->durable_ms = -1;
	return c;
}

void
deadlines_observe(struct journeyd *env, const char *source, int64_t ts)
{
	struct stream_clock	*c;

	if (env->conf->clock != CONFIG_CLOCK_EVENT)
		return;
	c = clock_of(env->deadlines, source);
	if (ts > c->latest_ms)
		c->latest_ms = ts;
}

void
deadlines_durable(struct journeyd *env, const char *source, int64_t ts)
{
	struct stream_clock	*c = find_clock(env->deadlines, source);

	/* made when the event was applied */
	if (c != NULL && ts > c->durable_ms)
		c->durable_ms = ts;
}

static void
forget_found(struct deadlines *dl)
{
	for (size_t i = 0; i < dl->n; i++)
		free(dl->id[i]);
	dl->n = 0;
}

/*
 * Removes an index entry that is no customer id journeyd could have
 * written (too long, or holding a NUL): skipped, it would come back first
 * in every scan.
 */
static int
stranger(const redisReply *m)
{
	return m->len > EVENT_CUSTOMER_MAX || strlen(m->str) != m->len;
}

static void
drop_stranger(struct journeyd *env, const char *source, const redisReply *m)
{
	char		 key[KEY_LEN];
	const char	*argv[] = { "ZREM", key, m->str };
	size_t		 argvlen[] = { 4, 0, m->len };

	argvlen[1] = (size_t)snprintf(key, sizeof(key), "%sdue:%s",
	    env->conf->redis_prefix, source);
	log_warnx("deadline index %s: dropped an entry of %zu bytes, no "
	    "customer id", key, m->len);
	redis_store_command(env, NULL, NULL, 3, argv, argvlen);
}

/* Takes a customer found due in the index of source. */
static void
take(struct journeyd *env, const char *source, int64_t now,
    const redisReply *m)
{
	struct deadlines	*dl = env->deadlines;

	if (m->type != REDIS_REPLY_STRING)
		return;
	if (stranger(m)) {
		drop_stranger(env, source, m);
		return;
	}
	if (dl->n == dl->cap) {
		dl->cap = dl->cap ? 2 * dl->cap : 256;
		if ((dl->id = reallocarray(dl->id, dl->cap,
		    sizeof(*dl->id))) == NULL ||
		    (dl->now_ms = reallocarray(dl->now_ms, dl->cap,
		    sizeof(*dl->now_ms))) == NULL ||
		    (dl->source = reallocarray(dl->source, dl->cap,
		    sizeof(*dl->source))) == NULL)
			fatal("due customers");
	}
	if ((dl->id[dl->n] = strdup(m->str)) == NULL)
		fatal("due customer");
	dl->source[dl->n] = source;
	dl->now_ms[dl->n++] = now;
}

static void
tag_text(struct journeyd *env, char tag[TAG_LEN])
{
	snprintf(tag, TAG_LEN, "%016" PRIx64,
	    journey_model_deadline_tag(&env->conf->model));
}

/* What went wrong with a reply, for the log. */
static const char *
reply_error(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";
}

/*
 * Records that the index of source is as the running settings make it:
 * verb HSET, or HSETNX to claim an index no settings have tagged yet.
 */
static void
record_tag(struct journeyd *env, const char *verb, const char *source)
{
	char		 key[KEY_LEN], tag[TAG_LEN];
	const char	*argv[] = { verb, key, source, tag };

	snprintf(key, sizeof(key), "%sdue_model", env->conf->redis_prefix);
	tag_text(env, tag);
	redis_store_command_v(env, 4, argv);
}

/* Whether the entry (ms, id) comes after the sweep's end. */
static int
past_end(const struct sweep *sw, int64_t ms, const char *id)
{
	size_t	len = strlen(id), end_len = strlen(sw->end_id);
	int	c;

	if (ms != sw->end_ms)
		return ms > sw->end_ms;
	/* the sorted set's order of equal scores: bytes, then length */
	c = memcmp(id, sw->end_id, len < end_len ? len : end_len);
	return c > 0 || (c == 0 && len > end_len);
}

/*
 * The index of source is to be written under the running settings: if it
 * was not swept with them, it is marked unswept first (on the writer,
 * whose commands run in order, before any state write under them).
 */
static void
mark_unswept(struct journeyd *env, const char *source)
{
	char		 key[KEY_LEN], tag[TAG_LEN];
	const char	*argv[] = { "EVALSHA", NULL, "1", key, source, tag };

	argv[1] = redis_store_script_sha(env, mark_script_id);
	snprintf(key, sizeof(key), "%sdue_model", env->conf->redis_prefix);
	tag_text(env, tag);
	redis_store_command_v(env, 6, argv);
}

/* The sweep of partitions whose last page is durable is done: say so. */
static void
sweeps_durable(struct journeyd *env)
{
	struct deadlines	*dl = env->deadlines;
	struct sweep		*sw;
	char			 tag[TAG_LEN];

	tag_text(env, tag);
	for (size_t i = 0; i < dl->nsweeps; i++) {
		sw = &dl->sweep[i];
		if (!sw->paged)
			continue;
		sw->paged = 0;
		sw->after_ms = sw->next_ms;
		memcpy(sw->after_id, sw->next_id, sizeof(sw->after_id));
		if (!sw->ended)
			continue;
		sw->phase = SWEEP_DONE;
		record_tag(env, "HSET", sw->source);
		log_info("deadlines: index of %s swept for churn settings %s",
		    sw->source, tag);
	}
}

/* Pages whose batch will not be durable are read again. */
static void
sweeps_dropped(struct deadlines *dl)
{
	for (size_t i = 0; i < dl->nsweeps; i++)
		dl->sweep[i].paged = 0;
}

static struct sweep *
find_sweep(struct deadlines *dl, const char *source)
{
	for (size_t i = 0; i < dl->nsweeps; i++)
		if (strcmp(dl->sweep[i].source, source) == 0)
			return &dl->sweep[i];
	return NULL;
}

/* The last reply of a scan: its customers go to the pipeline. */
static void
scan_replied(struct journeyd *env)
{
	struct deadlines	*dl = env->deadlines;

	if (--dl->replies_pending > 0)
		return;
	/* partitions may have gone meanwhile: their new owner scans them */
	if (env->stopping || kafka_source_blocked(env) ||
	    kafka_source_generation(env) != dl->scan_generation) {
		forget_found(dl);
		sweeps_dropped(dl);
		dl->scanning = 0;
		return;
	}
	if (dl->n == 0) {
		sweeps_durable(env);
		dl->scanning = 0;
		return;
	}
	log_debug("deadlines: %zu customers due", dl->n);
	batch_enqueue_due(env, dl->n, dl->id, dl->now_ms, dl->source);
	forget_found(dl);
}

static void
on_due(struct journeyd *env, redisReply *r, void *arg)
{
	struct deadlines	*dl = env->deadlines;
	int64_t			 now = dl->scan_now_ms[(uintptr_t)arg];
	const char		*source = dl->scan_source[(uintptr_t)arg];

	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < r->elements; i++)
			take(env, source, now, r->element[i]);
		if (r->elements >= (size_t)dl->scan_due[(uintptr_t)arg])
			dl->full = 1;
	} else
		log_warnx("redis: deadline scan: %s", reply_error(r));
	scan_replied(env);
}

static void
on_tag(struct journeyd *env, redisReply *r, void *arg)
{
	struct deadlines	*dl = env->deadlines;
	struct sweep		*sw = find_sweep(dl,
				    dl->scan_source[(uintptr_t)arg]);
	char			 tag[TAG_LEN];

	tag_text(env, tag);
	if (sw == NULL || sw->phase != SWEEP_ASKED) {
		scan_replied(env);
		return;
	}
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL) {
		/* on_last decides, by what the index holds */
		sw->stale = 1;
		snprintf(sw->found_tag, sizeof(sw->found_tag), "%s",
		    r->type == REDIS_REPLY_STRING ? r->str : "");
	} else {
		log_warnx("redis: deadline index tag: %s", reply_error(r));
		sw->phase = SWEEP_ASK;
	}
	scan_replied(env);
}

/*
 * The index's last entry. An index whose tag is not the running one's is
 * tagged at once if empty, else swept up to that entry. One whose tag is
 * may still hold entries put off to the end of time while their stage
 * was gone (batch.c: put_off_due_entry) by settings whose sweep was never
 * recorded (a reload reverted before it ended): only those are swept.
 */
static void
on_last(struct journeyd *env, redisReply *r, void *arg)
{
	struct deadlines	*dl = env->deadlines;
	const char		*source = dl->scan_source[(uintptr_t)arg];
	struct sweep		*sw = find_sweep(dl, source);
	char			 tag[TAG_LEN];
	int			 same, entry;
	int64_t			 last_ms;

	if (sw == NULL || sw->phase != SWEEP_ASKED || !sw->stale) {
		scan_replied(env);
		return;
	}
	sw->stale = 0;
	tag_text(env, tag);
	same = strcmp(sw->found_tag, tag) == 0;
	entry = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_STRING;
	last_ms = entry ? (int64_t)strtod(r->element[1]->str, NULL) : 0;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
		if (!same)
			record_tag(env, "HSET", source);
		sw->phase = SWEEP_DONE;
	} else if (entry && same && last_ms < TIMESTAMP_MAX_MS)
		sw->phase = SWEEP_DONE;		/* nothing put off */
	else if (entry) {
		if (same)
			log_info("deadlines: index of %s holds customers put "
			    "off while their stage was gone: looking at them "
			    "again", source);
		else if (strcmp(sw->found_tag, UNSWEPT_TAG) == 0)
			log_info("deadlines: index of %s was written under "
			    "churn settings it was not swept with (changed by "
			    "a reload or a restart): sweeping it", source);
		else if (sw->found_tag[0] != '\0')
			log_info("deadlines: index of %s was made with churn "
			    "settings %s, not %s: sweeping it", source,
			    sw->found_tag, tag);
		else
			log_info("deadlines: index of %s has no churn settings "
			    "tag (an earlier build's): sweeping it", source);
		sw->phase = SWEEP_RUNNING;
		sw->after_ms = same ? TIMESTAMP_MAX_MS - 1 : -1;
		sw->end_ms = last_ms;
		snprintf(sw->end_id, sizeof(sw->end_id), "%s",
		    r->element[0]->str);
	} else {
		log_warnx("redis: deadline index end: %s", reply_error(r));
		sw->phase = SWEEP_ASK;
	}
	scan_replied(env);
}

static void
on_page(struct journeyd *env, redisReply *r, void *arg)
{
	struct deadlines	*dl = env->deadlines;
	int64_t			 now = dl->scan_now_ms[(uintptr_t)arg];
	const char		*source = dl->scan_source[(uintptr_t)arg];
	struct sweep		*sw = find_sweep(dl, source);
	const redisReply	*m, *score;
	int64_t			 ms;

	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
		log_warnx("redis: deadline index sweep: %s", reply_error(r));
	else if (sw != NULL && sw->phase == SWEEP_RUNNING) {
		sw->next_ms = sw->after_ms;
		memcpy(sw->next_id, sw->after_id, sizeof(sw->next_id));
		sw->ended = r->elements / 2 < (size_t)sw->limit;
		for (size_t i = 0; i < r->elements; i += 2) {
			m = r->element[i];
			score = r->element[i + 1];
			if (m->type != REDIS_REPLY_STRING ||
			    score->type != REDIS_REPLY_STRING)
				continue;
			ms = (int64_t)strtod(score->str, NULL);
			if (past_end(sw, ms, m->str)) {
				sw->ended = 1;
				break;
			}
			take(env, source, now, m);
			sw->next_ms = ms;
			snprintf(sw->next_id, sizeof(sw->next_id), "%s",
			    m->str);
		}
		sw->paged = 1;
	}
	scan_replied(env);
}

/*
 * Now for partition part (source), or -1 when it is not to be scanned:
 * its clock has not started, or kafka_source_scannable says its
 * customers' events may wait behind a hold. The event clock waits for
 * that too, since a clock stored in Redis starts it before anything of
 * the partition is read.
 */
static int64_t
now_for(struct journeyd *env, const rd_kafka_topic_partition_t *part,
    const char *source, int64_t wall)
{
	struct stream_clock	*c = find_clock(env->deadlines, source);

	if (!kafka_source_scannable(env, part->topic, part->partition))
		return -1;
	if (env->conf->clock == CONFIG_CLOCK_WALL)
		wall = kafka_source_clock(env, part->topic, part->partition,
		    wall);
	return churn_clock_now(env->conf->clock == CONFIG_CLOCK_EVENT, wall,
	    c != NULL ? c->latest_ms : -1, env->conf->clock_lateness_ms);
}

/* The sweep of source, new (its tag to be read) if it had none. */
static struct sweep *
sweep_of(struct journeyd *env, const char *source)
{
	struct deadlines	*dl = env->deadlines;
	struct sweep	*sw;

	if ((sw = find_sweep(dl, source)) != NULL)
		return sw;
	if ((sw = reallocarray(dl->sweep, dl->nsweeps + 1,
	    sizeof(*dl->sweep))) == NULL)
		fatal("deadline index sweeps");
	dl->sweep = sw;
	sw = &dl->sweep[dl->nsweeps++];
	memset(sw, 0, sizeof(*sw));
	snprintf(sw->source, sizeof(sw->source), "%s", source);
	tag_text(env, sw->tag);
	sw->phase = SWEEP_ASK;
	return sw;
}

static int
send_read(struct journeyd *env, redis_store_cb cb, int i, int argc,
    const char **argv)
{
	size_t	argvlen[8];

	for (int k = 0; k < argc; k++)
		argvlen[k] = strlen(argv[k]);
	if (redis_store_read(env, cb, (void *)(uintptr_t)i, argc, argv,
	    argvlen) == -1)
		return -1;
	env->deadlines->replies_pending++;
	return 0;
}

/* Asks for partition i's tag, or its sweep's next page. */
static int
send_sweep(struct journeyd *env, int i, const char *key, struct sweep *sw)
{
	char		 tags[KEY_LEN];
	char		 after[24], now[24], limit[24];
	const char	*tag[] = { "HGET", tags, sw->source };
	const char	*last[] = { "ZRANGE", key, "-1", "-1", "WITHSCORES" };
	const char	*page[] = { "EVALSHA", NULL, "1", key, after,
			    sw->after_id, now, limit };

	switch (sw->phase) {
	case SWEEP_ASK:
		snprintf(tags, sizeof(tags), "%sdue_model",
		    env->conf->redis_prefix);
		sw->phase = SWEEP_ASKED;
		if (send_read(env, on_tag, i, 3, tag) == -1)
			return -1;
		return send_read(env, on_last, i, 5, last);
	case SWEEP_RUNNING:
		page[1] = redis_store_script_sha(env, page_script_id);
		snprintf(after, sizeof(after), "%" PRId64, sw->after_ms);
		snprintf(now, sizeof(now), "%" PRId64,
		    env->deadlines->scan_now_ms[i]);
		snprintf(limit, sizeof(limit), "%d", sw->limit);
		return send_read(env, on_page, i, 8, page);
	default:
		return 0;
	}
}

static void
scan(struct journeyd *env)
{
	struct deadlines		*dl = env->deadlines;
	rd_kafka_topic_partition_list_t	*parts;
	struct sweep			*sw;
	char				 key[KEY_LEN];
	char				 source[JOURNEY_SOURCE_MAX];
	char				 max[24], limit[24];
	const char			*argv[7];
	size_t				 argvlen[7];
	int64_t				 wall = timestamp_now_ms(), now;
	int				 per = 1, due;

	if ((parts = kafka_source_assignment(env)) == NULL)
		return;
	dl->scan_generation = kafka_source_generation(env);
	dl->full = 0;
	if (dl->sweep_generation != dl->scan_generation) {
		dl->nsweeps = 0;
		dl->sweep_generation = dl->scan_generation;
	}
	if (parts->cnt > 0) {
		per = env->conf->max_inflight / SCAN_SHARE / parts->cnt;
		per = per < 1 ? 1 : per > SCAN_PARTITION_MAX ?
		    SCAN_PARTITION_MAX : per;
	}
	if ((size_t)parts->cnt > dl->nscan_now) {
		if ((dl->scan_now_ms = reallocarray(dl->scan_now_ms,
		    (size_t)parts->cnt, sizeof(*dl->scan_now_ms))) == NULL ||
		    (dl->scan_source = reallocarray(dl->scan_source,
		    (size_t)parts->cnt, sizeof(*dl->scan_source))) == NULL ||
		    (dl->scan_due = reallocarray(dl->scan_due,
		    (size_t)parts->cnt, sizeof(*dl->scan_due))) == NULL)
			fatal("deadline scan");
		dl->nscan_now = (size_t)parts->cnt;
	}
	for (int i = 0; i < parts->cnt; i++) {
		snprintf(source, sizeof(source), "%s/%d", parts->elems[i].topic,
		    (int)parts->elems[i].partition);
		if ((now = now_for(env, &parts->elems[i], source, wall)) < 0)
			continue;
		dl->scan_now_ms[i] = now;
		memcpy(dl->scan_source[i], source, sizeof(source));
		/* a sweep takes half the partition's share */
		sw = sweep_of(env, source);
		sw->limit = per - per / 2;
		due = sw->phase == SWEEP_RUNNING && per > 1 ? per / 2 : per;
		dl->scan_due[i] = due;
		argv[0] = "ZRANGEBYSCORE";
		argv[1] = key;
		argvlen[1] = (size_t)snprintf(key, sizeof(key), "%sdue:%s",
		    env->conf->redis_prefix, source);
		argv[2] = "-inf";
		argv[3] = max;
		argvlen[3] = (size_t)snprintf(max, sizeof(max), "%" PRId64,
		    now);
		argv[4] = "LIMIT";
		argv[5] = "0";
		argv[6] = limit;
		argvlen[6] = (size_t)snprintf(limit, sizeof(limit), "%d", due);
		for (int k = 0; k < 6; k++)
			if (k != 1 && k != 3)
				argvlen[k] = strlen(argv[k]);
		if (redis_store_read(env, on_due, (void *)(uintptr_t)i, 7,
		    argv, argvlen) == -1)
			break;
		dl->replies_pending++;
		dl->scanning = 1;
		if (send_sweep(env, i, key, sw) == -1)
			break;
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

static void
on_scan_timer(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;

	(void)fd;
	(void)what;
	/* like consumption: not while stopping, rebalancing or full */
	if (env->deadlines->scanning || env->stopping ||
	    !redis_store_ready(env) || kafka_source_blocked(env) ||
	    batch_full(env))
		return;
	scan(env);
}

void
deadlines_done(struct journeyd *env)
{
	struct deadlines	*dl = env->deadlines;

	sweeps_durable(env);
	dl->scanning = 0;
	/*
	 * More were due than a scan brings: the next one at once, not at
	 * the next tick (a burst of thousands due in one moment, customers
	 * of one campaign, would otherwise be flagged seconds late)
	 */
	if (dl->full)
		event_active(dl->scan_ev, EV_TIMEOUT, 1);
}

/*
 * The clock a partition's events left durable, as the state script
 * stored it beside the watermark: an instance that takes the partition
 * over (restarted, or after a rebalance) starts from it, rather than
 * finding nothing due until the partition's next event. At the end of a
 * replay, or of a partition gone quiet, that event may never come.
 */
static void
on_stored_clock(struct journeyd *env, redisReply *r, void *arg)
{
	struct deadlines	*dl = env->deadlines;
	struct stream_clock	*c;
	long long		 ms;
	char			*end;

	/* clocks start again only on a new connection: this one's is gone */
	if ((uintptr_t)arg >= dl->nclocks)
		return;
	c = &dl->clock[(uintptr_t)arg];
	if (r->type == REDIS_REPLY_NIL)
		return;
	errno = 0;
	ms = r->type == REDIS_REPLY_STRING ? strtoll(r->str, &end, 10) : -1;
	if (r->type != REDIS_REPLY_STRING || errno != 0 || end == r->str ||
	    *end != '\0' || ms < 0) {
		log_warnx("redis: event clock of %s: %s; it starts with the "
		    "partition's next event", c->source,
		    r->type == REDIS_REPLY_STRING ? "not a time" :
		    reply_error(r));
		return;
	}
	if (ms > c->latest_ms)
		c->latest_ms = ms;
	if (ms > c->durable_ms)
		c->durable_ms = ms;
	log_debug("deadlines: %s: event clock %lld from Redis", c->source, ms);
}

/* With clock = event, asks for the clock stored for source. */
static void
ask_stored_clock(struct journeyd *env, const char *source)
{
	struct deadlines	*dl = env->deadlines;
	char			 key[KEY_LEN];
	const char		*argv[] = { "HGET", key, source };
	size_t			 argvlen[3];
	uintptr_t		 i;

	if (env->conf->clock != CONFIG_CLOCK_EVENT)
		return;
	i = (uintptr_t)(clock_of(dl, source) - dl->clock);
	argvlen[0] = 4;
	argvlen[1] = (size_t)snprintf(key, sizeof(key), "%sclocks",
	    env->conf->redis_prefix);
	argvlen[2] = strlen(source);
	if (redis_store_command(env, on_stored_clock, (void *)i, 3, argv,
	    argvlen) == -1)
		log_warnx("redis: cannot ask for the event clock of %s",
		    source);
}

void
deadlines_assigned(struct journeyd *env, const char *source, int in_redis)
{
	if (!in_redis) {
		record_tag(env, "HSETNX", source);
		return;
	}
	mark_unswept(env, source);
	ask_stored_clock(env, source);
}

void
deadlines_reloaded(struct journeyd *env)
{
	struct deadlines		*dl = env->deadlines;
	rd_kafka_topic_partition_list_t	*parts;
	char				 tag[TAG_LEN];
	char				 source[JOURNEY_SOURCE_MAX];
	size_t				 kept = 0;

	/*
	 * Under settings that give another tag, each partition's tag is
	 * read again, and compared with it. The sweeps of a reload that
	 * leaves the tag as it was go on: restarted at every reload, a long
	 * one might never end.
	 */
	tag_text(env, tag);
	for (size_t i = 0; i < dl->nsweeps; i++)
		if (strcmp(dl->sweep[i].tag, tag) == 0)
			dl->sweep[kept++] = dl->sweep[i];
	dl->nsweeps = kept;
	/* with Redis away, the partitions are assigned again on its return */
	if (!redis_store_ready(env) ||
	    (parts = kafka_source_assignment(env)) == NULL)
		return;
	for (int i = 0; i < parts->cnt; i++) {
		snprintf(source, sizeof(source), "%s/%d", parts->elems[i].topic,
		    (int)parts->elems[i].partition);
		mark_unswept(env, source);
		/* the clock may have been the wall's until now */
		ask_stored_clock(env, source);
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

void
deadlines_redis_lost(struct journeyd *env)
{
	struct deadlines	*dl = env->deadlines;

	/* a lost connection's callbacks never run */
	forget_found(dl);
	sweeps_dropped(dl);
	dl->replies_pending = 0;
	dl->scanning = 0;
	for (size_t i = 0; i < dl->nclocks; i++)
		dl->clock[i].latest_ms = dl->clock[i].durable_ms;
}

void
deadlines_redis_ready(struct journeyd *env)
{
	struct deadlines	*dl = env->deadlines;

	/*
	 * what the clocks took for durable may be lost: start them again;
	 * and the sweeps, whose pages' writes may be lost too
	 */
	if (redis_store_server_changed(env)) {
		dl->nclocks = 0;
		dl->last_clock = 0;
		dl->nsweeps = 0;
	}
}

int
deadlines_init(struct journeyd *env)
{
	struct deadlines	*dl;
	struct timeval		 tv = { 0, SCAN_INTERVAL_MS * 1000 };

	if ((dl = calloc(1, sizeof(*dl))) == NULL)
		return -1;
	env->deadlines = dl;
	if ((page_script_id = redis_store_add_script(env, page_script)) ==
	    -1 || (mark_script_id = redis_store_add_script(env,
	    mark_script)) == -1)
		return -1;
	if ((dl->scan_ev = event_new(env->base, -1, EV_PERSIST, on_scan_timer,
	    env)) == NULL || event_add(dl->scan_ev, &tv) == -1)
		return -1;
	return 0;
}

void
deadlines_free(struct journeyd *env)
{
	struct deadlines	*dl = env->deadlines;

	if (dl == NULL)
		return;
	if (dl->scan_ev != NULL)
		event_free(dl->scan_ev);
	forget_found(dl);
	free(dl->id);
	free(dl->now_ms);
	free(dl->source);
	free(dl->scan_now_ms);
	free(dl->scan_source);
	free(dl->scan_due);
	free(dl->clock);
	free(dl->sweep);
	free(dl);
	env->deadlines = NULL;
}
