/*
 * kafka_sink.c: the idempotent producer that carries stage-change alerts
 * and dead letters. Delivery reports are served on the event loop (the
 * main queue wakes a pipe) and handed to the batch that produced the
 * message. A message that still fails after librdkafka's own retries is
 * produced again: alerts are at-least-once, and the batch that owns it
 * does not finish (nor store its offsets) until it is acknowledged.
 *
 * A fatal error ends an idempotent producer for good. journeyd then puts a
 * new producer in its place at once, and retires the old one: purged and
 * flushed, every message it had not had acknowledged comes back as a
 * failed delivery report and is produced again on the new producer, for
 * the same batch. Nothing in flight is abandoned.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

struct kafka_sink {
	rd_kafka_t		*rk;
	rd_kafka_queue_t	*mainq;
	rd_kafka_t		*retired;	/* failed fatally, being flushed */
	rd_kafka_queue_t	*retiredq;
	struct event		*retire_ev;
	int			 wake[2];
	struct event		*wake_ev;
	uint64_t		 resent;
	uint64_t		 replaced;
};

static int	producer_start(struct journeyd *);
static void	replace_producer(struct journeyd *);

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct journeyd		*env = opaque;
	struct kafka_sink	*sink = env->sink;
	rd_kafka_headers_t	*hdrs = NULL, *copy = NULL;
	rd_kafka_resp_err_t	 err;

	(void)rk;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		batch_delivered(env, m->_private);
		return;
	}
	/* after message.timeout.ms: send it again rather than lose it */
	log_warnx("kafka: delivery to %s failed (%s); producing it again",
	    rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
		copy = rd_kafka_headers_copy(hdrs);
	/* the report may come before the fatal error is reported */
	if (rd_kafka_fatal_error(sink->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
		replace_producer(env);
	/* on the current producer: rk may be one that failed fatally */
	err = rd_kafka_producev(sink->rk,
	    RD_KAFKA_V_TOPIC(rd_kafka_topic_name(m->rkt)),
	    RD_KAFKA_V_KEY(m->key, m->key_len),
	    RD_KAFKA_V_VALUE(m->payload, m->len),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_HEADERS(copy),
	    RD_KAFKA_V_OPAQUE(m->_private),
	    RD_KAFKA_V_END);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		fatalx("kafka: cannot produce again to %s: %s",
		    rd_kafka_topic_name(m->rkt), rd_kafka_err2str(err));
	sink->resent++;
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct journeyd		*env = opaque;
	struct kafka_sink	*sink = env->sink;
	char			 fatalstr[256];

	if (err != RD_KAFKA_RESP_ERR__FATAL) {
		if (!kafka_conf_error_logged(err))
			log_warnx("kafka producer: %s", reason);
		return;
	}
	if (rk != sink->rk)
		return;		/* already replaced */
	rd_kafka_fatal_error(rk, fatalstr, sizeof(fatalstr));
	log_warnx("kafka producer: fatal error: %s", fatalstr);
	replace_producer(env);
}

/* Swaps in a new producer now, so reports served from here on resend on it. */
static void
replace_producer(struct journeyd *env)
{
	struct kafka_sink	*sink = env->sink;

	if (sink->retired != NULL)
		fatalx("kafka: a second producer failed while the first was "
		    "being replaced");
	log_warnx("kafka: replacing the producer; what it had not had "
	    "acknowledged is produced again");
	sink->retired = sink->rk;
	sink->retiredq = sink->mainq;
	sink->rk = NULL;
	sink->mainq = NULL;
	if (producer_start(env) == -1)
		fatalx("kafka: cannot create a new producer");
	sink->replaced++;
	event_active(sink->retire_ev, 0, 0);
}

/* Outside the retired producer's callbacks: flush it, then let it go. */
static void
on_retire(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd		*env = arg;
	struct kafka_sink	*sink = env->sink;
	rd_kafka_t		*old = sink->retired;

	(void)fd;
	(void)what;
	rd_kafka_queue_io_event_enable(sink->retiredq, -1, NULL, 0);
	rd_kafka_queue_destroy(sink->retiredq);
	rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_flush(old, 10000);	/* serves each purged message's report */
	if (rd_kafka_outq_len(old) > 0)
		fatalx("kafka: %d messages of the failed producer unaccounted "
		    "for; exiting without storing their offsets",
		    rd_kafka_outq_len(old));
	rd_kafka_destroy(old);
	sink->retired = NULL;
	sink->retiredq = NULL;
	log_info("kafka: producer replaced (%llu so far)",
	    (unsigned long long)sink->replaced);
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd	*env = arg;
	char		 buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	/* the pipe only fires on empty -> non-empty: drain everything */
	while (rd_kafka_poll(env->sink->rk, 0) > 0)
		;
}

/* Creates the producer and wires its main queue to our wake-up pipe. */
static int
producer_start(struct journeyd *env)
{
	struct kafka_sink	*sink = env->sink;
	rd_kafka_conf_t		*kc;
	char			 errstr[512];

	if ((kc = kafka_conf_client(env, CONFIG_SCOPE_PRODUCER)) == NULL)
		return -1;
	rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
	rd_kafka_conf_set_error_cb(kc, on_error);
	if ((sink->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr,
	    sizeof(errstr))) == NULL) {
		log_warnx("kafka producer: %s", errstr);
		goto fail;
	}
	sink->mainq = rd_kafka_queue_get_main(sink->rk);
	rd_kafka_queue_io_event_enable(sink->mainq, sink->wake[1], "1", 1);
	/* anything queued before the pipe was armed would never wake us */
	while (rd_kafka_poll(sink->rk, 0) > 0)
		;
	return 0;
fail:
	rd_kafka_conf_destroy(kc);
	return -1;
}

int
kafka_sink_open(struct journeyd *env)
{
	struct kafka_sink	*sink;

	if ((sink = calloc(1, sizeof(*sink))) == NULL)
		return -1;
	sink->wake[0] = sink->wake[1] = -1;
	env->sink = sink;
	if (pipe2(sink->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_warn("pipe");
		return -1;
	}
	if ((sink->wake_ev = event_new(env->base, sink->wake[0],
	    EV_READ | EV_PERSIST, on_wake, env)) == NULL ||
	    event_add(sink->wake_ev, NULL) == -1 ||
	    (sink->retire_ev = event_new(env->base, -1, 0, on_retire,
	    env)) == NULL)
		return -1;
	return producer_start(env);
}

/*
 * The payload is copied into the message's own allocation, of its exact
 * size: the caller's buffer is reused for the next alert, and a buffer
 * handed over would stay allocated at its grown capacity until delivered.
 */
int
kafka_sink_produce(struct journeyd *env, const char *topic, const void *key,
    size_t keylen, const void *payload, size_t len,
    rd_kafka_headers_t *headers, void *opaque)
{
	rd_kafka_resp_err_t	err;
	int			tries = 0;

	do {
		err = rd_kafka_producev(env->sink->rk,
		    RD_KAFKA_V_TOPIC(topic),
		    RD_KAFKA_V_KEY(key, keylen),
		    RD_KAFKA_V_VALUE((void *)payload, len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_HEADERS(headers),
		    RD_KAFKA_V_OPAQUE(opaque),
		    RD_KAFKA_V_END);
		/* the producer can fail before its error reaches the loop */
		if (err == RD_KAFKA_RESP_ERR__FATAL && tries++ == 0)
			replace_producer(env);
		else
			break;
	} while (1);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_warnx("kafka: cannot produce to %s: %s", topic,
		    rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

void
kafka_sink_close(struct journeyd *env, int64_t deadline_ms)
{
	struct kafka_sink	*sink = env->sink;
	int64_t			 left = deadline_ms - timestamp_monotonic_ms();

	if (sink == NULL)
		return;
	/* its unacknowledged messages move to the current producer first */
	if (sink->retired != NULL)
		on_retire(-1, 0, env);
	if (sink->rk != NULL) {
		/* in the time the drain left, 10 s at most */
		if (rd_kafka_flush(sink->rk, left < 10000 ? (left > 0 ?
		    (int)left : 0) : 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_warnx("kafka: %d messages not delivered at exit",
			    rd_kafka_outq_len(sink->rk));
		if (sink->mainq != NULL) {
			rd_kafka_queue_io_event_enable(sink->mainq, -1, NULL,
			    0);
			rd_kafka_queue_destroy(sink->mainq);
		}
		rd_kafka_destroy(sink->rk);
	}
	if (sink->retire_ev != NULL)
		event_free(sink->retire_ev);
	if (sink->wake_ev != NULL)
		event_free(sink->wake_ev);
	if (sink->wake[0] != -1) {
		close(sink->wake[0]);
		close(sink->wake[1]);
	}
	free(sink);
	env->sink = NULL;
}
