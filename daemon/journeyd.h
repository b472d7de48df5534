/*
 * journeyd.h: the daemon's shared state and the interfaces between its
 * I/O modules (Kafka source and sink, Redis store, in-flight batches).
 * Everything runs on one libevent loop; no module owns a thread.
 */
#ifndef JOURNEYD_JOURNEYD_H
#define JOURNEYD_JOURNEYD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/async.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "customer.h"
#include "journey.h"

struct batch;
struct customer_cache;
struct deadlines;
struct heartbeat;
struct http_server;
struct kafka_source;
struct kafka_sink;
struct metrics;
struct redis_store;

TAILQ_HEAD(batch_queue, batch);

struct journeyd {
	struct event_base	*base;
	struct config		*conf;
	struct config		*conf_next;	/* reloaded, awaiting quiescence */
	int			 debug;		/* -d: log_level is ignored */
	struct kafka_source	*source;
	struct kafka_sink	*sink;
	struct redis_store	*store;
	struct customer_cache	*cache;
	struct names		*names;
	struct deadlines	*deadlines;
	struct heartbeat	*heartbeat;
	struct metrics		*metrics;
	struct http_server	*http;

	struct batch_queue	 batches;	/* in consumption order */
	uint64_t		 batch_seq;
	int64_t			 inflight;	/* messages consumed, not done */
	/* alerts and dead letters of abandoned batches, not yet reported:
	 * they fill librdkafka's queue like those in flight */
	int64_t			 abandoned_deliveries;
	struct event		*pump_ev;	/* deferred batch_pump */

	int			 stopping;
	struct event		*drain_timer;
	int64_t			 stop_deadline_ms;	/* monotonic */

	/* consumed as read; the outcomes and alerts once their batch is
	 * done, so that the work Redis's loss makes journeyd do again is
	 * counted once (or as duplicates, if the write was taken and its
	 * reply lost) */
	struct {
		uint64_t	 consumed;
		uint64_t	 applied;
		uint64_t	 duplicates;
		uint64_t	 dead_lettered;
		uint64_t	 alerts[JOURNEY_CHANGE_KINDS];	/* by type */
		uint64_t	 finished;	/* events whose batch completed */
		uint64_t	 reloads;
	} stats;
};

/* journeyd.c: lifecycle */
void	journeyd_shutdown_step(struct journeyd *env);

/* reload.c: SIGHUP */
/* reads the file again; a good one waits in conf_next for reload_apply */
void	reload_request(struct journeyd *env);
/* called by the pump with nothing in flight: conf_next into force */
void	reload_apply(struct journeyd *env);

/* notify.c: the service manager (sd_notify): readiness, status, watchdog */
void	notify_init(struct journeyd *env);
void	notify_close(void);
void	notify_ready(struct journeyd *env);
void	notify_reloading(void);
void	notify_stopping(void);

/*
 * journeyd's connections to Redis (redis_store.c): the writer, for the
 * state writes and all whose order matters to them, and the reader
 */
enum redis_connection { REDIS_WRITER, REDIS_READER, REDIS_CONNECTIONS };

/* metrics.c: what /metrics reports beyond plain counters, and its text */
int	metrics_init(struct journeyd *env);
void	metrics_close(struct journeyd *env);
/*
 * The class of a dead letter's reason (its words before any number or
 * colon: a bounded label set), to count with metrics_dead_lettered once
 * its batch is done.
 */
int	metrics_reason_class(struct journeyd *env, const char *reason);
void	metrics_dead_lettered(struct journeyd *env, int reason_class);
void	metrics_redis_roundtrip(struct journeyd *env,
	    enum redis_connection conn, int64_t usec);
void	metrics_render(struct journeyd *env, struct evbuffer *out);

/* http_server.c: /healthz and /metrics */
int	http_server_open(struct journeyd *env);
void	http_server_close(struct journeyd *env);

/* batch.c: consumed messages -> state in Redis, alerts out, offsets stored */
void	batch_schedule_pump(struct journeyd *env);
/* after redis_store_open: registers the state-writing script */
int	batch_init(struct journeyd *env);
void	batch_destroy_all(struct journeyd *env);
void	batch_delivered(struct journeyd *env, void *opaque);
/*
 * Whether the batch a message was produced for was abandoned: it never
 * wrote, its events will be read again and their messages produced again,
 * so a failed delivery of it need not be.
 */
int	batch_abandoned(const void *opaque);
void	batch_abandon_all(struct journeyd *env);
/* Whether the work in flight is at max_inflight. */
int	batch_full(const struct journeyd *env);
/*
 * Queues a batch of n customers whose deadlines up to now_ms[i] are due,
 * found in the deadline index of partition source[i].
 */
void	batch_enqueue_due(struct journeyd *env, size_t n, char *const *ids,
	    const int64_t *now_ms, const char *const *source);

/* deadlines.c: customers whose silence reaches a deadline, per partition */
int	deadlines_init(struct journeyd *env);
void	deadlines_free(struct journeyd *env);
/* an event of partition source ("topic/partition") at ts was applied */
void	deadlines_observe(struct journeyd *env, const char *source, int64_t ts);
/* the same event, once durable */
void	deadlines_durable(struct journeyd *env, const char *source, int64_t ts);
/* the batch of due customers is durable: the next scan may start */
void	deadlines_done(struct journeyd *env);
/*
 * source ("topic/partition") is assigned, before any write to it. With
 * nothing of it in Redis (in_redis 0: no watermark) its deadline index,
 * empty, is claimed for the running settings, so that it is not taken for
 * an earlier build's; else it is marked unswept if it was swept with
 * other settings, and with clock = event its clock is read.
 */
void	deadlines_assigned(struct journeyd *env, const char *source,
	    int in_redis);
/* a reload is in force: each partition's index is swept if its churn
 * settings or cadences changed */
void	deadlines_reloaded(struct journeyd *env);
/* the Redis connection was lost: replies and the batch will not come */
void	deadlines_redis_lost(struct journeyd *env);
/* Redis is back: if it restarted, the clocks start again */
void	deadlines_redis_ready(struct journeyd *env);

/* names.c: this instance's copy of the name table in Redis */
int	names_init(struct journeyd *env);
void	names_free(struct journeyd *env);
const struct name_table *names_table(struct journeyd *env);
/* moves whenever the copy changes */
uint64_t names_generation(struct journeyd *env);
/* a new connection: read the table afresh, before anything else */
void	names_redis_ready(struct journeyd *env);
/* read the table again: what lies beyond the copy, or all of a new one */
void	names_read_all(struct journeyd *env);
/* the state script says the list holds count names */
void	names_reported(struct journeyd *env, long long count);

/* customer_cache.c: customers touched by in-flight batches */
struct customer_entry {
	struct customer_entry	*next;		/* hash chain */
	/*
	 * The state, packed (customer_pack, without numbered names; none for
	 * a new customer): a tenth of the unpacked struct, so that memory follows
	 * the events in flight rather than how many distinct customers they
	 * name. Unpacked only while a batch applies or writes it.
	 */
	unsigned char		*packed;
	size_t			 packed_len, packed_cap;
	uint64_t		 touched_by;	/* seq of last batch that wrote */
	size_t			 touched_at;	/* its index in that batch */
	struct batch		*writer;	/* that batch, until it writes */
	struct batch		*loader;	/* batch awaiting its load */
	int			 refs;
	unsigned int		 loaded:1;
	unsigned int		 unreadable:1;	/* stored state malformed */
	unsigned int		 names_tried:1;	/* loaded again after names */
	uint64_t		 names_gen;	/* the copy then */
	size_t			 idlen;
	char			 id[];
};

struct customer_cache	*customer_cache_new(void);
void	customer_cache_free(struct customer_cache *c);
/* Looks id up, or adds it (not loaded). Either way takes a reference. */
struct customer_entry	*customer_cache_ref(struct customer_cache *c,
	    const char *id, int *created);
void	customer_cache_unref(struct customer_cache *c,
	    struct customer_entry *e);
/*
 * s from the reply to GET of a customer's key (nil: a new customer), its
 * numbered names from names; -1 with why when it is unreadable,
 * CUSTOMER_NAME_UNKNOWN when names lacks a name it numbers.
 */
int	customer_cache_decode(const struct journey_model *m,
	    const struct name_table *names, const redisReply *r,
	    struct journey_state *s, const char **why);
/* e's state from that reply, kept packed; returns as above. */
int	customer_cache_load(const struct journey_model *m,
	    const struct name_table *names, struct customer_entry *e,
	    const redisReply *r, const char **why);
/* e's state, unpacked into s. */
void	customer_cache_get(const struct journey_model *m,
	    const struct customer_entry *e, struct journey_state *s);
/* Packs s as e's state. */
void	customer_cache_put(const struct journey_model *m,
	    struct customer_entry *e, const struct journey_state *s);

/*
 * redis_store.c: async hiredis connections with deadlines: the writer,
 * and a reader for reads that need not wait for the writes before them
 */
typedef void (*redis_store_cb)(struct journeyd *env, redisReply *reply,
	    void *arg);
/*
 * Ready this long, Redis counts as up again: lost sooner (a command
 * refused each time, as by an ACL or a full disk, or a server killed
 * over and over), it is still the same outage.
 */
#define REDIS_STABLE_MS		10000
#define REDIS_STORE_SCRIPTS_MAX	4
int	redis_store_open(struct journeyd *env);
/* scripts are loaded on every connect, before the store is ready */
int	redis_store_add_script(struct journeyd *env, const char *lua);
const char *redis_store_script_sha(struct journeyd *env, int script);
void	redis_store_start(struct journeyd *env);
/*
 * The writer's chain of state writes (see batch.c): the connection's name,
 * unique to it among every connection the server has had (its run_id and
 * client id), and the place in the chain of the write about to be sent on
 * it, 1 for the first.
 */
const char *redis_store_writer_chain(struct journeyd *env, uint64_t *link);
/*
 * 1 when the server that answered the last connect is another process
 * than the one before (restarted, or another server): it may lack writes
 * the one before acknowledged (its last second, with appendfsync everysec).
 */
int	redis_store_server_changed(struct journeyd *env);
/* drop the connection as lost (and reconnect): the reply made no sense */
void	redis_store_fail(struct journeyd *env, const char *why,
	    const char *detail);
void	redis_store_close(struct journeyd *env);
int	redis_store_command(struct journeyd *env, redis_store_cb cb, void *arg,
	    int argc, const char **argv, const size_t *argvlen);
/*
 * A read on the reader: it may be answered before commands sent earlier
 * on the writer, so only where missing what those write does no harm: a
 * customer none of them writes (one being written is never loaded), the
 * name table (read again after each write that adds to it), the deadline
 * index (deadlines.c).
 */
int	redis_store_read(struct journeyd *env, redis_store_cb cb, void *arg,
	    int argc, const char **argv, const size_t *argvlen);
/* a command already in RESP (resp.h) */
int	redis_store_formatted(struct journeyd *env, redis_store_cb cb,
	    void *arg, const char *cmd, size_t len);
/* a command whose reply nobody waits for; argv are C strings */
int	redis_store_command_v(struct journeyd *env, int argc,
	    const char **argv);
int	redis_store_ready(struct journeyd *env);
/* why the store is not ready: what lost it last ("" while it is ready) */
const char *redis_store_trouble(struct journeyd *env);
/* how long the store has been ready; -1 while it is not */
int64_t	redis_store_ready_for_ms(struct journeyd *env);
/* both connections are set up, and the writer's first write was taken */
void	journeyd_redis_ready(struct journeyd *env);
/* Redis was lost (either connection): everything sent is forgotten */
void	journeyd_redis_lost(struct journeyd *env);

/* map_page.c: the journey map page and its JSON on the HTTP endpoint */
struct evhttp_request;
/* 1 if path (and query, or NULL) is one of its pages, answered or under way */
int	map_page_dispatch(struct journeyd *env, struct evhttp_request *req,
	    const char *path, const char *query);
/*
 * Answers every request waiting for Redis 503 with why, at once; their
 * replies, unless the connection that owes them is gone (replies_lost),
 * are awaited and ignored.
 */
void	map_page_abort(struct journeyd *env, const char *why,
	    int replies_lost);

/* heartbeat.c: this instance's heartbeat keys in Redis */
int	heartbeat_init(struct journeyd *env);
void	heartbeat_now(struct journeyd *env);
void	heartbeat_stop(struct journeyd *env);
void	heartbeat_free(struct journeyd *env);

/* kafka_conf.c: client configuration shared by the source and the sink */
/* the producer's or the consumer's configuration; NULL, logged, if refused */
rd_kafka_conf_t *kafka_conf_client(struct journeyd *env,
	    enum config_scope scope);
/* an error of a client's error callback its log lines already tell */
int	kafka_conf_error_logged(int err);
/*
 * For journeyd -n: whether both clients can be made of conf (librdkafka
 * checks properties against each other only then, such as an acks other
 * than all with the idempotent producer). 0, or -1 with "LINE: why".
 */
int	kafka_conf_check(const struct config *conf, char *why, size_t size);

/* kafka_sink.c: the idempotent producer for alerts and dead letters */
int	kafka_sink_open(struct journeyd *env);
/* flushes what is queued until deadline_ms (monotonic) at most */
void	kafka_sink_close(struct journeyd *env, int64_t deadline_ms);
/*
 * Copies the key and the payload: the caller keeps its buffers; the
 * headers are the message's. A message with headers is a dead letter, and
 * is cut if it is too large to send. A message the producer refuses
 * waits, and is produced again (kafka_sink.c): each comes to its batch's
 * delivery reports once delivered.
 */
void	kafka_sink_produce(struct journeyd *env, const char *topic,
	    const void *key, size_t keylen, const void *payload, size_t len,
	    rd_kafka_headers_t *headers, void *opaque);

/*
 * Drops the messages waiting to be produced again whose batches were
 * abandoned: their events are read again and produce them again.
 */
void	kafka_sink_drop_abandoned(struct journeyd *env);
/* messages waiting to be produced again (why: the latest failure); 0
 * when none wait */
size_t	kafka_sink_failing(struct journeyd *env, char *why, size_t size);
/* messages produced again after a failed delivery, so far */
uint64_t kafka_sink_resent(struct journeyd *env);

/* kafka_source.c: the consumer-group member */
int	kafka_source_open(struct journeyd *env);
/* commits and leaves the group until deadline_ms (monotonic) at most */
void	kafka_source_close(struct journeyd *env, int64_t deadline_ms);
size_t	kafka_source_consume(struct journeyd *env, rd_kafka_message_t **msgs,
	    size_t max);
/* while Redis is away: drops what is consumed, serving the rebalances */
void	kafka_source_discard(struct journeyd *env);
/* revoking, or preparing an assignment: consume nothing now */
int	kafka_source_blocked(struct journeyd *env);
/* changes whenever the assignment starts or finishes changing */
uint64_t kafka_source_generation(struct journeyd *env);
/* Redis is back (or up for the first time) / Redis was lost */
void	kafka_source_redis_ready(struct journeyd *env);
void	kafka_source_pause(struct journeyd *env);
/* messages behind the assigned partitions' ends (-1: not known yet) */
int64_t	kafka_source_lag(struct journeyd *env);
/* the partitions assigned now (NULL if none); the caller destroys it */
rd_kafka_topic_partition_list_t *kafka_source_assignment(struct journeyd *env);
void	kafka_source_store(struct journeyd *env,
	    rd_kafka_topic_partition_list_t *offsets);
/* called whenever in-flight work reaches zero */
void	kafka_source_idle(struct journeyd *env);
/* 1 from leaving the group after a long outage of Redis to joining again */
int	kafka_source_left_group(struct journeyd *env);
/* 0 while librdkafka reports every broker down */
int	kafka_source_reachable(struct journeyd *env);
/*
 * Whether the timers may scan a partition, by either clock: 0 while it is
 * held, or until it is read far enough to know it is not (fetched, and a
 * message taken unless its log ends where it resumed).
 */
int	kafka_source_scannable(struct journeyd *env, const char *topic,
	    int32_t partition);
/*
 * With clock = wall, a scannable partition's now: wall once all its log
 * holds is read; while a backlog is, the Kafka time of the last message
 * taken from it, so that no customer whose event waits in the backlog
 * falls due before it is read; -1 (not scanned) with nothing taken yet,
 * or the log not fetched yet.
 */
int64_t	kafka_source_clock(struct journeyd *env, const char *topic,
	    int32_t partition, int64_t wall);
/* offsets retention deleted before they were read; partitions held */
uint64_t kafka_source_offsets_gone(struct journeyd *env);
int	kafka_source_held(struct journeyd *env, char *first, size_t size);
/* each assigned partition whose lag is known: high watermark - position */
typedef void (*kafka_source_lag_cb)(void *arg, const char *topic,
	    int32_t partition, int64_t lag);
void	kafka_source_lags(struct journeyd *env, kafka_source_lag_cb cb,
	    void *arg);

#endif
