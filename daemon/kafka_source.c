/*
 * kafka_source.c: journeyd's consumer-group member. Its two queues wake
 * the event loop through one pipe (only on empty -> non-empty, so each is
 * drained on every wake-up): the main queue (errors, statistics, commit
 * results) is served at once, whatever the pipeline is doing, so that
 * nothing piles up there while consumption waits; the consumer queue
 * (messages and rebalances) by the batch pump, and while Redis is away,
 * when the pump takes nothing, by kafka_source_discard. Offsets are
 * stored by the batch code only once their work is durable, and committed
 * by librdkafka's auto-commit, on revocation and at shutdown.
 *
 * A revocation is finished, not abandoned: the rebalance callback returns
 * without unassigning while batches are in flight; consumption stops, the
 * batches complete and store their offsets, and only then are the offsets
 * committed and the partitions given up.
 *
 * An assignment starts where Redis says the state ends: each partition's
 * watermark in <prefix>offsets is the last offset whose effects are in
 * Redis, so the partition resumes at watermark + 1 (Kafka's committed
 * offset only where Redis has none). That re-applies exactly what a Redis
 * that lost its last second lost, and skips what was applied but not yet
 * committed. When Redis comes back after an outage the current assignment
 * is prepared again the same way, which also rewinds past the work that
 * was abandoned with the connection.
 *
 * While Redis is away the member stays a good one: what librdkafka hands
 * over is put in force at once, paused (assign_paused), and rewound with
 * the rest once Redis is back; away as long as max.poll.interval.ms, it
 * leaves the group for the others to take its partitions (on_away), and
 * joins again once Redis has stayed up REDIS_STABLE_MS. An outage ends
 * only then: a Redis up for moments (killed over and over, refusing each
 * write) neither keeps the member in the group nor brings it back to
 * rebalance the whole group at each moment.
 *
 * For /healthz the source also tracks whether Kafka can be reached: an
 * "all brokers down" error marks it unreachable, and a commit answered or
 * librdkafka's statistics (parsed only while it is: their interval may be
 * long) tell when a broker is up again. A message consumed does not: the
 * queue still holds those fetched before the brokers went.
 *
 * Each partition's log is expected to go on where the last message taken
 * from it ended, or where its assignment started it. librdkafka reads a
 * position its log no longer holds from the log's start (kafka_conf sets
 * auto.offset.reset = earliest), and says so only in a line of its log;
 * the offsets that come then tell which way the log moved. Past the
 * position, with the log's start beyond it: Kafka's retention deleted
 * events before they were read, logged and counted, since Kafka holds
 * them no more (a larger step alone is a compacted record or a
 * transaction's marker). Below the position: the log starts again beneath
 * what Redis says is applied (a topic deleted and created again, a log
 * truncated), and every event of it would pass for one already applied,
 * to a customer whose offsets say so, and be dropped unseen. The
 * partition is held instead, paused, its events left in Kafka and
 * /healthz failing, until an assignment or a rewind starts it from Redis
 * again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

/*
 * Where an assigned partition's log is expected to go on (see the top),
 * and how far it was read, for kafka_source_clock and
 * kafka_source_scannable.
 */
struct partition_pos {
	char		*topic;
	int32_t		 partition;
	int64_t		 next;		/* -1: not known (from the start) */
	int64_t		 restart;	/* held: where its log starts; or -1 */
	int64_t		 ts;		/* the last taken's Kafka time, or -1 */
	int64_t		 taken_ms;	/* then, or assigned (monotonic) */
	int		 taken;		/* a message, since assigned */
};

/*
 * A log may hold more than it hands over: a transaction's marker, or an
 * aborted transaction, at its end. A few offsets short of its end, with
 * nothing come from it for READ_ON_MS, it counts as read; a backlog of
 * more, however slow its fetches, does not.
 */
#define READ_ON_MS		5000
#define READ_ON_OFFSETS		8
#define NOT_FETCHED		INT64_MIN	/* unread_offsets */

/*
 * librdkafka before 2.3.0 aborts in rd_kafka_destroy() a cooperative-sticky
 * consumer that joined its group but has had no assignment yet: the
 * assignor's state, made at the first assignment, is destroyed without a
 * check (its issue 4312). A journeyd stopped during its first join (a
 * restart, systemd's stop) would dump core instead of exiting 0.
 */
#define LIBRDKAFKA_ASSIGNOR_FIX	0x020300ff

struct kafka_source {
	rd_kafka_t			*rk;
	rd_kafka_queue_t		*queue;		/* the consumer's */
	rd_kafka_queue_t		*main_queue;
	int				 wake[2];
	struct event			*wake_ev;
	struct event			*away_ev;	/* on_away */
	int				 away_ms;	/* max.poll.interval.ms */
	int64_t				 away_since_ms;	/* 0: not away */
	int				 left_group;
	rd_kafka_topic_partition_list_t	*revoked;	/* pending revocation */
	rd_kafka_topic_partition_list_t	*assigning;	/* awaiting watermarks */
	int				 reassign;	/* assigning is a rewind */
	uint64_t			 assign_gen;
	int				 brokers_down;
	int				 consuming;	/* in a consume call */
	int				 closed;
	struct partition_pos		*pos;		/* of each assigned */
	int				 npos;
	int				 last_pos;	/* the last found */
	uint64_t			 offsets_gone;	/* by retention */
	int				 unassigned_sticky; /* see close */
};

static void	prepare_assignment(struct journeyd *);
static int	subscribe(struct journeyd *);

static int
cooperative(rd_kafka_t *rk)
{
	return strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
}

static void
log_partitions(const char *what, const rd_kafka_topic_partition_list_t *l)
{
	char	buf[1024];
	size_t	off = 0;

	buf[0] = '\0';
	for (int i = 0; i < l->cnt && off < sizeof(buf) - 64; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s/%d",
		    i ? " " : "", l->elems[i].topic, (int)l->elems[i].partition);
	log_info("kafka: %s %d partitions: %s", what, l->cnt, buf);
}

static void
set_assigning(struct kafka_source *src, rd_kafka_topic_partition_list_t *l,
    int reassign)
{
	if (src->assigning != NULL)
		rd_kafka_topic_partition_list_destroy(src->assigning);
	src->assigning = l;
	src->reassign = reassign;
	src->assign_gen++;
}

static struct partition_pos *
find_pos(struct kafka_source *src, const char *topic, int32_t partition)
{
	struct partition_pos	*p;

	/* a batch holds runs of messages of one partition */
	for (int i = 0; i < src->npos; i++) {
		p = &src->pos[(src->last_pos + i) % src->npos];
		if (p->partition == partition && strcmp(p->topic, topic) == 0) {
			src->last_pos = (int)(p - src->pos);
			return p;
		}
	}
	return NULL;
}

/* Forgets the positions of the partitions of l (of all: l NULL). */
static void
forget_positions(struct kafka_source *src,
    const rd_kafka_topic_partition_list_t *l)
{
	struct partition_pos	*p;

	for (int i = 0; l == NULL ? src->npos > 0 : i < l->cnt; i++) {
		p = l == NULL ? &src->pos[0] : find_pos(src,
		    l->elems[i].topic, l->elems[i].partition);
		if (p == NULL)
			continue;
		free(p->topic);
		*p = src->pos[--src->npos];
	}
	src->last_pos = 0;
}

/* The partitions of l start where l says, held or not before. */
static void
set_positions(struct kafka_source *src,
    const rd_kafka_topic_partition_list_t *l)
{
	struct partition_pos	*p, *grown;

	for (int i = 0; i < l->cnt; i++) {
		const rd_kafka_topic_partition_t *e = &l->elems[i];

		if ((p = find_pos(src, e->topic, e->partition)) == NULL) {
			if ((grown = reallocarray(src->pos, src->npos + 1,
			    sizeof(*grown))) == NULL ||
			    (grown[src->npos].topic = strdup(e->topic)) ==
			    NULL) {
				if (grown != NULL)
					src->pos = grown;
				log_warn("kafka: %s/%d: where its log goes on "
				    "will not be checked", e->topic,
				    (int)e->partition);
				continue;
			}
			src->pos = grown;
			p = &src->pos[src->npos++];
			p->partition = e->partition;
		}
		p->next = e->offset >= 0 ? e->offset : -1;
		p->restart = -1;
		p->ts = -1;
		p->taken_ms = timestamp_monotonic_ms();
		p->taken = 0;
	}
}

/*
 * 1 when m, a message of a partition held, must not be applied; now_ms
 * (monotonic) is when its consume call took it.
 */
static int
position_check(struct kafka_source *src, const rd_kafka_message_t *m,
    int64_t now_ms)
{
	const char			*topic = rd_kafka_topic_name(m->rkt);
	struct partition_pos		*p = find_pos(src, topic, m->partition);
	rd_kafka_topic_partition_list_t	*l;
	int64_t				 low, high, gone;

	if (p == NULL)
		return 0;
	if (p->restart >= 0)
		return 1;
	if (p->next >= 0 && m->offset < p->next) {
		p->restart = m->offset;
		log_warnx("kafka: %s/%d: its log starts again at offset %lld, "
		    "below offset %lld, where journeyd had got to: the topic "
		    "was created again, or its log truncated; held until it "
		    "is assigned again (README \"Kafka's log\")",
		    topic, (int)m->partition, (long long)m->offset,
		    (long long)p->next);
		l = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(l, topic, m->partition);
		rd_kafka_pause_partitions(src->rk, l);
		rd_kafka_topic_partition_list_destroy(l);
		return 1;
	}
	/*
	 * The log start, as the last fetch said it; m read from the start of
	 * the log, not one fetched before retention passed it
	 */
	if (p->next >= 0 && m->offset > p->next &&
	    rd_kafka_get_watermark_offsets(src->rk, topic, m->partition, &low,
	    &high) == RD_KAFKA_RESP_ERR_NO_ERROR && low > p->next &&
	    m->offset >= low) {
		gone = low - p->next;
		src->offsets_gone += (uint64_t)gone;
		log_warnx("kafka: %s/%d: offsets %lld to %lld were deleted by "
		    "Kafka's retention before journeyd read them: not applied",
		    topic, (int)m->partition, (long long)p->next,
		    (long long)(p->next + gone - 1));
	}
	p->next = m->offset + 1;
	p->ts = rd_kafka_message_timestamp(m, NULL);
	p->taken_ms = now_ms;
	p->taken = 1;
	return 0;
}

/* Adds to dst the partitions of add it lacks. */
static void
add_missing(rd_kafka_topic_partition_list_t *dst,
    const rd_kafka_topic_partition_list_t *add)
{
	for (int i = 0; i < add->cnt; i++)
		if (rd_kafka_topic_partition_list_find(dst, add->elems[i].topic,
		    add->elems[i].partition) == NULL)
			rd_kafka_topic_partition_list_add(dst,
			    add->elems[i].topic, add->elems[i].partition);
}

/* The partitions of l that are (owned) or are not (!owned) assigned now. */
static rd_kafka_topic_partition_list_t *
assigned_now(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *l,
    int owned)
{
	rd_kafka_topic_partition_list_t	*now, *part;

	part = rd_kafka_topic_partition_list_new(l->cnt);
	if (rd_kafka_assignment(rk, &now) != RD_KAFKA_RESP_ERR_NO_ERROR)
		now = rd_kafka_topic_partition_list_new(0);
	for (int i = 0; i < l->cnt; i++)
		if ((rd_kafka_topic_partition_list_find(now, l->elems[i].topic,
		    l->elems[i].partition) != NULL) == owned)
			rd_kafka_topic_partition_list_add(part,
			    l->elems[i].topic, l->elems[i].partition);
	rd_kafka_topic_partition_list_destroy(now);
	return part;
}

/*
 * Cooperative: what of l is assigned now is unassigned, to be assigned
 * again at the offsets read (a rewind); the rest is new to this member.
 */
static rd_kafka_error_t *
unassign_owned(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *l)
{
	rd_kafka_topic_partition_list_t	*owned = assigned_now(rk, l, 1);
	rd_kafka_error_t		*error = NULL;

	if (owned->cnt > 0)
		error = rd_kafka_incremental_unassign(rk, owned);
	rd_kafka_topic_partition_list_destroy(owned);
	return error;
}

/*
 * Puts src->assigning, its offsets set, in force. librdkafka waits for
 * this call even when the assignment is empty: an instance left with no
 * partition would otherwise stay in the middle of that rebalance, and
 * never join the next one (when an owner leaves, nothing would be handed
 * to it).
 */
static void
assign(struct journeyd *env)
{
	struct kafka_source		*src = env->source;
	rd_kafka_topic_partition_list_t	*l = src->assigning;
	rd_kafka_error_t		*error = NULL;
	rd_kafka_resp_err_t		 err;

	/*
	 * Partitions paused while Redis was away fetch again. Resumed
	 * before the assignment, not after: librdkafka drops a partition's
	 * operation older than one it has served, and the fetch start its
	 * own thread makes once the old fetch has stopped could overtake a
	 * resume made after it and leave the partition paused for good.
	 * What a resumed partition fetches meanwhile, the new assignment's
	 * version discards; nothing is consumed while src->assigning is set.
	 */
	rd_kafka_resume_partitions(src->rk, l);
	set_positions(src, l);		/* held or not: from Redis again */
	if (cooperative(src->rk)) {
		if (src->reassign)
			error = unassign_owned(src->rk, l);
		if (error == NULL)
			error = rd_kafka_incremental_assign(src->rk, l);
	} else if ((err = rd_kafka_assign(src->rk, l)) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warnx("kafka: assign: %s", rd_kafka_err2str(err));
	if (error != NULL) {
		log_warnx("kafka: assign: %s", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	set_assigning(src, NULL, 0);
	heartbeat_now(env);	/* what this instance owns has changed */
	batch_schedule_pump(env);
}

static void
on_watermarks(struct journeyd *env, redisReply *r, void *arg)
{
	struct kafka_source		*src = env->source;
	rd_kafka_topic_partition_list_t	*l;
	char				*end, source[JOURNEY_SOURCE_MAX];

	/* none: the reply of a read sent before a stop */
	if (src == NULL || src->closed || (l = src->assigning) == NULL ||
	    (uint64_t)(uintptr_t)arg != src->assign_gen)
		return;		/* superseded by a later rebalance */
	if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)l->cnt) {
		/* nothing else would ask again: reconnecting does */
		redis_store_fail(env, "cannot read the partition watermarks",
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		return;
	}
	for (int i = 0; i < l->cnt; i++) {
		redisReply	*e = r->element[i];
		long long	 wm;

		/*
		 * None: nothing of this partition is in Redis (a state and
		 * its watermark are written together), even where Kafka has
		 * a committed offset (a Redis restored from an older backup,
		 * or started empty): all of it is applied
		 */
		l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
		snprintf(source, sizeof(source), "%s/%d", l->elems[i].topic,
		    (int)l->elems[i].partition);
		deadlines_assigned(env, source, e->type != REDIS_REPLY_NIL);
		if (e->type == REDIS_REPLY_NIL) {
			log_info("kafka: %s/%d reads from the start of its log "
			    "(no Redis watermark)", l->elems[i].topic,
			    (int)l->elems[i].partition);
			continue;
		}
		errno = 0;
		wm = e->type == REDIS_REPLY_STRING ?
		    strtoll(e->str, &end, 10) : -2;
		if (wm < -1 || wm == LLONG_MAX || errno != 0 || *end != '\0') {
			/* not ours to guess: the committed offset */
			log_warnx("kafka: %s/%d: watermark in Redis is not an "
			    "offset; resuming at the committed offset",
			    l->elems[i].topic, (int)l->elems[i].partition);
			l->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
			continue;
		}
		l->elems[i].offset = wm + 1;
		log_info("kafka: %s/%d resumes at %lld (Redis watermark)",
		    l->elems[i].topic, (int)l->elems[i].partition, wm + 1);
	}
	assign(env);
}

/*
 * Redis is away: src->assigning is put in force now, paused, rather than
 * left waiting for its watermarks. librdkafka, waiting for an assignment,
 * takes part in no other rebalance, and the group would wait for this
 * member up to its max.poll.interval.ms. What is fetched before the pause
 * holds is dropped (kafka_source_discard); once Redis is back,
 * kafka_source_redis_ready rewinds every partition assigned.
 */
static void
assign_paused(struct journeyd *env)
{
	struct kafka_source		*src = env->source;
	rd_kafka_topic_partition_list_t	*l = src->assigning, *fresh;
	rd_kafka_error_t		*error = NULL;
	rd_kafka_resp_err_t		 err;

	/* first: a pause queued ahead of the assignment's fetch start holds */
	rd_kafka_pause_partitions(src->rk, l);
	if (cooperative(src->rk)) {
		fresh = assigned_now(src->rk, l, 0);
		if (fresh->cnt > 0)
			error = rd_kafka_incremental_assign(src->rk, fresh);
		rd_kafka_topic_partition_list_destroy(fresh);
	} else if (!src->reassign &&	/* a rewind: in force already */
	    (err = rd_kafka_assign(src->rk, l)) != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warnx("kafka: assign: %s", rd_kafka_err2str(err));
	if (error != NULL) {
		log_warnx("kafka: assign: %s", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	/*
	 * and again: a topic this client was never assigned had no partition
	 * to pause until the assignment made one; its fetch start waits for
	 * the committed offset, so this pause still comes first
	 */
	rd_kafka_pause_partitions(src->rk, l);
	set_assigning(src, NULL, 0);
	batch_schedule_pump(env);
}

/* Asks Redis where each partition of src->assigning resumes. */
static void
prepare_assignment(struct journeyd *env)
{
	struct kafka_source		*src = env->source;
	rd_kafka_topic_partition_list_t	*l = src->assigning;
	const char			**argv;
	size_t				*argvlen;
	char				*fields, key[256];
	int				 argc = 2;

	if (l != NULL && l->cnt == 0) {
		assign(env);	/* nothing to ask */
		return;
	}
	if (l == NULL)
		return;
	if (!redis_store_ready(env)) {
		assign_paused(env);	/* kafka_source_redis_ready rewinds it */
		return;
	}
	argv = calloc((size_t)l->cnt + 2, sizeof(*argv));
	argvlen = calloc((size_t)l->cnt + 2, sizeof(*argvlen));
	fields = calloc((size_t)l->cnt, 300);
	if (argv == NULL || argvlen == NULL || fields == NULL)
		fatal("watermark request");
	argv[0] = "HMGET";
	argvlen[0] = 5;
	argv[1] = key;
	argvlen[1] = (size_t)snprintf(key, sizeof(key), "%soffsets",
	    env->conf->redis_prefix);
	for (int i = 0; i < l->cnt; i++, argc++) {
		argv[argc] = fields + i * 300;
		argvlen[argc] = (size_t)snprintf(fields + i * 300, 300,
		    "%s/%d", l->elems[i].topic, (int)l->elems[i].partition);
	}
	if (redis_store_command(env, on_watermarks,
	    (void *)(uintptr_t)src->assign_gen, argc, argv, argvlen) == -1)
		log_warnx("kafka: cannot ask Redis for watermarks");
	free(argv);
	free(argvlen);
	free(fields);
}

/* on_away runs in ms (at once if that is past) */
static void
away_check_in(struct kafka_source *src, int64_t ms)
{
	struct timeval	tv = timestamp_timeval(ms > 0 ? ms : 0);

	evtimer_add(src->away_ev, &tv);
}

void
kafka_source_redis_ready(struct journeyd *env)
{
	struct kafka_source		*src = env->source;
	rd_kafka_topic_partition_list_t	*current = NULL;

	if (src == NULL || src->closed)
		return;
	/* on_away ends the outage, or joins again, once Redis stays up */
	if (src->away_since_ms != 0)
		away_check_in(src, REDIS_STABLE_MS);
	/*
	 * every partition assigned, paused while Redis was away (what was
	 * handed over meanwhile too: assign_paused), is rewound
	 */
	if (rd_kafka_assignment(src->rk, &current) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR && current->cnt > 0) {
		log_partitions("rewinding", current);
		set_assigning(src, current, 1);
		current = NULL;
	}
	if (current != NULL)
		rd_kafka_topic_partition_list_destroy(current);
	prepare_assignment(env);
}

void
kafka_source_pause(struct journeyd *env)
{
	struct kafka_source		*src = env->source;
	rd_kafka_topic_partition_list_t	*current = NULL;

	if (src == NULL || src->closed)
		return;
	/* keep librdkafka from fetching what we cannot apply */
	if (rd_kafka_assignment(src->rk, &current) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_pause_partitions(src->rk, current);
		rd_kafka_topic_partition_list_destroy(current);
	}
	/* an assignment that was waiting for its watermarks */
	if (src->assigning != NULL)
		assign_paused(env);
	/* lost again before it stayed up: the same outage goes on */
	if (src->away_since_ms == 0)
		src->away_since_ms = timestamp_monotonic_ms();
	if (!src->left_group)
		away_check_in(src, src->away_since_ms + src->away_ms -
		    timestamp_monotonic_ms());
}

/*
 * While Redis is away: when it has been away as long as librdkafka lets a
 * member go without polling, this member leaves the group, as it would
 * had it stopped polling, so that the others take its partitions. (It
 * polls all along: its queues are served meanwhile.) Once Redis has
 * stayed up, the outage is over, and a member that left joins again.
 */
static void
on_away(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd		*env = arg;
	struct kafka_source	*src = env->source;
	rd_kafka_resp_err_t	 err;
	int64_t			 up_ms, away_for_ms;

	(void)fd;
	(void)what;
	if (src == NULL || src->closed || env->stopping ||
	    src->away_since_ms == 0)
		return;
	if ((up_ms = redis_store_ready_for_ms(env)) >= 0) {
		if (up_ms < REDIS_STABLE_MS) {
			away_check_in(src, REDIS_STABLE_MS - up_ms);
			return;
		}
		if (src->left_group) {
			log_info("kafka: Redis is back: joining the group "
			    "again");
			if (subscribe(env) == -1) {
				away_check_in(src, REDIS_STABLE_MS);
				return;
			}
			src->left_group = 0;
			batch_schedule_pump(env);
		}
		src->away_since_ms = 0;
		return;
	}
	if (src->left_group)
		return;		/* kafka_source_redis_ready arms the next check */
	away_for_ms = timestamp_monotonic_ms() - src->away_since_ms;
	if (away_for_ms < src->away_ms) {
		away_check_in(src, src->away_ms - away_for_ms);
		return;
	}
	log_warnx("kafka: Redis away for %lld ms (max.poll.interval.ms %d): "
	    "leaving the consumer group for the other instances to take its "
	    "partitions; joining again once Redis stays up",
	    (long long)away_for_ms, src->away_ms);
	if ((err = rd_kafka_unsubscribe(src->rk)) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_warnx("kafka: unsubscribe: %s", rd_kafka_err2str(err));
		away_check_in(src, REDIS_STABLE_MS);
		return;
	}
	src->left_group = 1;
	batch_schedule_pump(env);	/* the revocation comes on the queue */
}

static void
finish_revoke(struct journeyd *env)
{
	struct kafka_source	*src = env->source;
	rd_kafka_resp_err_t	 err;
	rd_kafka_error_t	*error = NULL;

	/*
	 * Asynchronous: a commit waits for the coordinator, up to a session
	 * timeout while it moves, and the loop (HTTP, Redis, the watchdog)
	 * may not; librdkafka rejoins only once it is answered, and its
	 * result comes to on_commit. Closing: the final commit is on its way.
	 */
	if (!rd_kafka_assignment_lost(src->rk) && !src->closed)
		(void)rd_kafka_commit(src->rk, NULL, 1);
	if (cooperative(src->rk)) {
		error = rd_kafka_incremental_unassign(src->rk, src->revoked);
		if (error != NULL) {
			log_warnx("kafka: unassign: %s",
			    rd_kafka_error_string(error));
			rd_kafka_error_destroy(error);
		}
	} else if ((err = rd_kafka_assign(src->rk, NULL)) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warnx("kafka: unassign: %s", rd_kafka_err2str(err));
	forget_positions(src, src->revoked);
	rd_kafka_topic_partition_list_destroy(src->revoked);
	src->revoked = NULL;
	batch_schedule_pump(env);
}

static void
on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct journeyd		*env = opaque;
	struct kafka_source	*src = env->source;
	rd_kafka_error_t	*error = NULL;

	switch (err) {
	case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
		src->unassigned_sticky = 0;
		log_partitions("assigned", parts);
		if (src->assigning != NULL && cooperative(rk)) {
			/* a rewind or partitions waiting for Redis: joined */
			add_missing(src->assigning, parts);
			src->assign_gen++;
		} else
			set_assigning(src, rd_kafka_topic_partition_list_copy(
			    parts), 0);
		prepare_assignment(env);
		break;
	case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
		log_partitions(rd_kafka_assignment_lost(rk) ? "lost" :
		    "revoking", parts);
		if (src->revoked != NULL)
			rd_kafka_topic_partition_list_destroy(src->revoked);
		src->revoked = rd_kafka_topic_partition_list_copy(parts);
		/*
		 * an assignment still waiting for Redis is void now; with the
		 * cooperative protocol only what of it is revoked: the rest
		 * (a rewind of what stays owned, partitions handed over) is
		 * asked for again
		 */
		if (cooperative(rk) && src->assigning != NULL) {
			for (int i = 0; i < parts->cnt; i++)
				rd_kafka_topic_partition_list_del(src->assigning,
				    parts->elems[i].topic,
				    parts->elems[i].partition);
			src->assign_gen++;
			prepare_assignment(env);
		} else
			set_assigning(src, NULL, 0);
		/*
		 * Served inside a consume call, the revocation comes with the
		 * messages queued around it, of the partitions it takes: they
		 * are applied before the partitions are given up, as a batch
		 * the revocation waits for (the pump finishes it).
		 */
		if (env->inflight == 0 && !src->consuming)
			finish_revoke(env);
		else
			batch_schedule_pump(env);
		break;
	default:
		log_warnx("kafka: rebalance failed: %s", rd_kafka_err2str(err));
		rd_kafka_assign(rk, NULL);
		break;
	}
	if (error != NULL) {
		log_warnx("kafka: assign: %s", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
}

static void
brokers_up(struct kafka_source *src, const char *why)
{
	if (!src->brokers_down)
		return;
	log_info("kafka consumer: %s", why);
	src->brokers_down = 0;
}

static void
on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	struct journeyd	*env = opaque;

	(void)rk;
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR &&
	    err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_warnx("kafka: offset commit failed: %s",
		    rd_kafka_err2str(err));
	else if (offsets != NULL) {
		log_debug("kafka: committed %d partitions", offsets->cnt);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR && env->source != NULL)
			brokers_up(env->source, "the group coordinator "
			    "answered a commit");
	}
}

/* A fatal error of the consumer comes as a message: kafka_source_consume */
static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct journeyd	*env = opaque;

	(void)rk;
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		env->source->brokers_down = 1;
	if (!kafka_conf_error_logged(err))
		log_warnx("kafka consumer: %s", reason);
}

/* librdkafka has no "broker up" event: its statistics list broker states */
static int
on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	struct journeyd	*env = opaque;
	json_t		*root, *brokers, *b;
	const char	*name, *state;

	(void)rk;
	if (!env->source->brokers_down)
		return 0;
	if ((root = json_loadb(json, len, 0, NULL)) == NULL)
		return 0;
	brokers = json_object_get(root, "brokers");
	json_object_foreach(brokers, name, b) {
		state = json_string_value(json_object_get(b, "state"));
		if (state != NULL && strcmp(state, "UP") == 0) {
			brokers_up(env->source, "a broker is up");
			break;
		}
	}
	json_decref(root);
	return 0;	/* librdkafka frees json */
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;
	char		 buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (env->source != NULL && !env->source->closed)
		rd_kafka_poll(env->source->rk, 0);	/* all it holds */
	batch_schedule_pump(env);
}

static int
subscribe(struct journeyd *env)
{
	struct config			*conf = env->conf;
	rd_kafka_topic_partition_list_t	*topics;
	rd_kafka_resp_err_t		 err;

	topics = rd_kafka_topic_partition_list_new(conf->ninput);
	for (int i = 0; i < conf->ninput; i++)
		rd_kafka_topic_partition_list_add(topics, conf->input_topic[i],
		    RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(env->source->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_warnx("kafka: subscribe: %s", rd_kafka_err2str(err));
		return -1;
	}
	log_info("kafka: consuming %s as group %s", conf->input_topic[0],
	    conf->group);
	return 0;
}

int
kafka_source_open(struct journeyd *env)
{
	struct kafka_source		*src;
	rd_kafka_conf_t			*kc;
	char				 errstr[512], value[256];
	size_t				 size = sizeof(value);

	if ((src = calloc(1, sizeof(*src))) == NULL)
		return -1;
	src->wake[0] = src->wake[1] = -1;
	env->source = src;
	if ((kc = kafka_conf_client(env, CONFIG_SCOPE_CONSUMER)) == NULL)
		goto fail;
	rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
	rd_kafka_conf_set_offset_commit_cb(kc, on_commit);
	rd_kafka_conf_set_error_cb(kc, on_error);
	rd_kafka_conf_set_stats_cb(kc, on_stats);
	if ((src->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr,
	    sizeof(errstr))) == NULL) {
		log_warnx("kafka consumer: %s", errstr);
		goto fail;
	}
	kc = NULL;
	if (rd_kafka_conf_get(rd_kafka_conf(src->rk), "max.poll.interval.ms",
	    value, &size) != RD_KAFKA_CONF_OK ||
	    (src->away_ms = atoi(value)) <= 0)
		src->away_ms = 300000;	/* librdkafka's default */
	size = sizeof(value);
	src->unassigned_sticky = rd_kafka_version() < LIBRDKAFKA_ASSIGNOR_FIX &&
	    rd_kafka_conf_get(rd_kafka_conf(src->rk),
	    "partition.assignment.strategy", value, &size) == RD_KAFKA_CONF_OK &&
	    strstr(value, "cooperative-sticky") != NULL;
	if ((src->away_ev = evtimer_new(env->base, on_away, env)) == NULL)
		goto fail;
	src->queue = rd_kafka_queue_get_consumer(src->rk);
	src->main_queue = rd_kafka_queue_get_main(src->rk);
	if (pipe2(src->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_warn("pipe");
		goto fail;
	}
	rd_kafka_queue_io_event_enable(src->queue, src->wake[1], "1", 1);
	rd_kafka_queue_io_event_enable(src->main_queue, src->wake[1], "1", 1);
	if ((src->wake_ev = event_new(env->base, src->wake[0],
	    EV_READ | EV_PERSIST, on_wake, env)) == NULL ||
	    event_add(src->wake_ev, NULL) == -1)
		goto fail;
	if (subscribe(env) == -1)
		goto fail;
	/* messages may have queued before the wake-up pipe was armed */
	batch_schedule_pump(env);
	return 0;
fail:
	if (kc != NULL)
		rd_kafka_conf_destroy(kc);
	return -1;
}

static size_t
consume(struct kafka_source *src, rd_kafka_message_t **msgs, size_t max)
{
	char	fatalstr[256];
	ssize_t	n;

	if (src == NULL || src->closed)
		return 0;
	src->consuming = 1;
	n = rd_kafka_consume_batch_queue(src->queue, 0, msgs, max);
	src->consuming = 0;
	if (n < 0) {
		log_warnx("kafka: consume: %s",
		    rd_kafka_err2str(rd_kafka_last_error()));
		return 0;
	}
	/*
	 * A group member's fatal error (fenced by another instance of its
	 * group.instance.id) is handed over among the messages, not to the
	 * error callback; every assignment after it is none, so consumption
	 * would stop for good: the service manager starts journeyd again.
	 */
	for (ssize_t i = 0; i < n; i++)
		if (msgs[i]->err == RD_KAFKA_RESP_ERR__FATAL) {
			rd_kafka_fatal_error(src->rk, fatalstr,
			    sizeof(fatalstr));
			fatalx("kafka consumer: fatal error: %s", fatalstr);
		}
	return (size_t)n;
}

/* The messages to work on: those of partitions held taken out. */
size_t
kafka_source_consume(struct journeyd *env, rd_kafka_message_t **msgs,
    size_t max)
{
	struct kafka_source	*src = env->source;
	size_t			 n, kept = 0;
	int64_t			 now_ms = timestamp_monotonic_ms();

	/* 0 only once the queue is empty: its pipe wakes on no less */
	while (kept == 0 && (n = consume(src, msgs, max)) > 0)
		for (size_t i = 0; i < n; i++)
			if (msgs[i]->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
			    position_check(src, msgs[i], now_ms))
				rd_kafka_message_destroy(msgs[i]);
			else
				msgs[kept++] = msgs[i];
	return kept;
}

void
kafka_source_discard(struct journeyd *env)
{
	rd_kafka_message_t	*msgs[256];
	size_t			 n;

	/*
	 * Redis is away: the partitions were paused and every one assigned
	 * when it is back is rewound to its watermark, so what the queue
	 * still holds would be read again anyway. Dropping it serves the
	 * rebalances behind it: a member that sat on them would hold the
	 * whole group up until its max.poll.interval.ms.
	 */
	while ((n = consume(env->source, msgs,
	    sizeof(msgs) / sizeof(msgs[0]))) > 0)
		for (size_t i = 0; i < n; i++)
			rd_kafka_message_destroy(msgs[i]);
}

uint64_t
kafka_source_generation(struct journeyd *env)
{
	return env->source == NULL ? 0 : env->source->assign_gen;
}

int
kafka_source_blocked(struct journeyd *env)
{
	return env->source == NULL || env->source->revoked != NULL ||
	    env->source->assigning != NULL;
}

rd_kafka_topic_partition_list_t *
kafka_source_assignment(struct journeyd *env)
{
	rd_kafka_topic_partition_list_t	*l = NULL;

	if (env->source == NULL || env->source->closed ||
	    rd_kafka_assignment(env->source->rk, &l) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		return NULL;
	return l;
}

void
kafka_source_store(struct journeyd *env,
    rd_kafka_topic_partition_list_t *offsets)
{
	/*
	 * Its result says an error only when every partition was refused:
	 * each one's is read. A revocation waits for the batches in flight,
	 * so none should be refused; one that is was given up before its
	 * work was done, and its next owner resumes from the watermark.
	 */
	(void)rd_kafka_offsets_store(env->source->rk, offsets);
	for (int i = 0; i < offsets->cnt; i++)
		if (offsets->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_warnx("kafka: %s/%d: offset %lld not stored: %s",
			    offsets->elems[i].topic,
			    (int)offsets->elems[i].partition,
			    (long long)offsets->elems[i].offset,
			    rd_kafka_err2str(offsets->elems[i].err));
}

void
kafka_source_idle(struct journeyd *env)
{
	if (env->source != NULL && env->source->revoked != NULL)
		finish_revoke(env);
}

int
kafka_source_left_group(struct journeyd *env)
{
	return env->source != NULL && env->source->left_group;
}

/*
 * How many offsets p's log holds past where it goes on, by librdkafka's
 * end of the log as the last fetch answered it (below 0: the log ends
 * before it); NOT_FETCHED before any fetch answered.
 */
static int64_t
unread_offsets(struct kafka_source *src, const struct partition_pos *p)
{
	int64_t	low, high;

	if (rd_kafka_get_watermark_offsets(src->rk, p->topic, p->partition,
	    &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR || high < 0)
		return NOT_FETCHED;
	return high - (p->next >= 0 ? p->next : low);
}

/* Whether p's log, unread offsets past where it goes on, counts as read. */
static int
counts_read(const struct partition_pos *p, int64_t unread)
{
	return unread == 0 || (unread > 0 && unread <= READ_ON_OFFSETS &&
	    timestamp_monotonic_ms() - p->taken_ms > READ_ON_MS);
}

int64_t
kafka_source_clock(struct journeyd *env, const char *topic,
    int32_t partition, int64_t wall)
{
	struct kafka_source	*src = env->source;
	struct partition_pos	*p;
	int64_t			 unread;

	if (src == NULL || (p = find_pos(src, topic, partition)) == NULL)
		return wall;
	if ((unread = unread_offsets(src, p)) == NOT_FETCHED)
		return -1;
	if (unread < 0 || counts_read(p, unread))
		return wall;
	return p->ts < wall ? p->ts : wall;
}

int
kafka_source_scannable(struct journeyd *env, const char *topic,
    int32_t partition)
{
	struct kafka_source	*src = env->source;
	struct partition_pos	*p;
	int64_t			 unread;

	if (src == NULL || (p = find_pos(src, topic, partition)) == NULL)
		return 1;
	/* its customers' events wait behind the hold */
	if (p->restart >= 0)
		return 0;
	/*
	 * Else the first message may hold it: not fetched yet, or a log that
	 * ends before where it goes on (it surely started again)
	 */
	if (p->taken)
		return 1;
	unread = unread_offsets(src, p);
	return unread != NOT_FETCHED && counts_read(p, unread);
}

uint64_t
kafka_source_offsets_gone(struct journeyd *env)
{
	return env->source == NULL ? 0 : env->source->offsets_gone;
}

int
kafka_source_held(struct journeyd *env, char *first, size_t size)
{
	struct kafka_source	*src = env->source;
	int			 held = 0;

	for (int i = 0; src != NULL && i < src->npos; i++) {
		struct partition_pos	*p = &src->pos[i];

		if (p->restart < 0)
			continue;
		if (held++ == 0)
			snprintf(first, size, "%s/%d at offset %lld, below "
			    "%lld", p->topic, (int)p->partition,
			    (long long)p->restart, (long long)p->next);
	}
	return held;
}

int
kafka_source_reachable(struct journeyd *env)
{
	return env->source != NULL && !env->source->brokers_down;
}

void
kafka_source_lags(struct journeyd *env, kafka_source_lag_cb cb, void *arg)
{
	struct kafka_source		*src = env->source;
	rd_kafka_topic_partition_list_t	*parts;
	int64_t				 low, high;

	if ((parts = kafka_source_assignment(env)) == NULL)
		return;
	/* both are librdkafka's cached values: nothing here waits */
	rd_kafka_position(src->rk, parts);
	for (int i = 0; i < parts->cnt; i++) {
		rd_kafka_topic_partition_t	*tp = &parts->elems[i];

		if (tp->offset < 0 || rd_kafka_get_watermark_offsets(src->rk,
		    tp->topic, tp->partition, &low, &high) !=
		    RD_KAFKA_RESP_ERR_NO_ERROR || high < 0)
			continue;	/* nothing consumed yet, or not fetched */
		cb(arg, tp->topic, tp->partition,
		    high > tp->offset ? high - tp->offset : 0);
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

static void
add_lag(void *arg, const char *topic, int32_t partition, int64_t lag)
{
	int64_t	*total = arg;

	(void)topic;
	(void)partition;
	*total = (*total < 0 ? 0 : *total) + lag;
}

int64_t
kafka_source_lag(struct journeyd *env)
{
	int64_t	lag = -1;

	kafka_source_lags(env, add_lag, &lag);
	return lag;
}

/*
 * Commits and leaves the group, serving its rebalance meanwhile, until
 * deadline_ms at most: rd_kafka_consumer_close, whose brokers are down,
 * waits out the session timeout (45 s by default), past the service
 * manager's stop timeout. 1 once closed.
 */
static int
close_consumer(struct journeyd *env, int64_t deadline_ms)
{
	rd_kafka_t		*rk = env->source->rk;
	rd_kafka_queue_t	*q;
	rd_kafka_event_t	*ev;
	rd_kafka_error_t	*error;
	rd_kafka_resp_err_t	 err;
	int64_t			 left;

	/* its result comes back as an event, dropped: the log says enough */
	if ((err = rd_kafka_commit(rk, NULL, 1)) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_warnx("kafka: final commit: %s", rd_kafka_err2str(err));
	if ((q = rd_kafka_queue_new(rk)) == NULL)
		return 0;
	if ((error = rd_kafka_consumer_close_queue(rk, q)) != NULL) {
		log_warnx("kafka: close: %s", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	while (!rd_kafka_consumer_closed(rk) &&
	    (left = deadline_ms - timestamp_monotonic_ms()) > 0) {
		if ((ev = rd_kafka_queue_poll(q, left < 100 ? (int)left :
		    100)) == NULL)
			continue;
		if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
			on_rebalance(rk, rd_kafka_event_error(ev),
			    rd_kafka_event_topic_partition_list(ev), env);
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_queue_destroy(q);
	return rd_kafka_consumer_closed(rk);
}

static void
queue_close(rd_kafka_queue_t *q)
{
	if (q == NULL)
		return;
	rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
	rd_kafka_queue_destroy(q);
}

void
kafka_source_close(struct journeyd *env, int64_t deadline_ms)
{
	struct kafka_source	*src = env->source;

	if (src == NULL)
		return;
	if (src->rk != NULL) {
		src->closed = 1;
		queue_close(src->queue);
		queue_close(src->main_queue);
		/*
		 * Left to the exit that follows when destroying it would wait
		 * for the close all the same, or abort (see
		 * LIBRDKAFKA_ASSIGNOR_FIX)
		 */
		if (!close_consumer(env, deadline_ms))
			log_warnx("kafka: the consumer did not leave its group "
			    "by the drain deadline; the group will notice at "
			    "its session timeout");
		else if (src->unassigned_sticky)
			log_info("kafka: the consumer, never assigned, is left "
			    "to the exit (destroying it could abort: "
			    "librdkafka's issue 4312, fixed in 2.3.0)");
		else
			rd_kafka_destroy(src->rk);
	}
	if (src->revoked != NULL)
		rd_kafka_topic_partition_list_destroy(src->revoked);
	set_assigning(src, NULL, 0);
	forget_positions(src, NULL);
	free(src->pos);
	if (src->wake_ev != NULL)
		event_free(src->wake_ev);
	if (src->away_ev != NULL)
		event_free(src->away_ev);
	if (src->wake[0] != -1) {
		close(src->wake[0]);
		close(src->wake[1]);
	}
	free(src);
	env->source = NULL;
}
