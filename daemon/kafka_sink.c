/*
 * kafka_sink.c: the idempotent producer that carries stage-change alerts
 * and dead letters. Delivery reports are served on the event loop (the
 * main queue wakes a pipe) and handed to the batch that produced the
 * message. A message that still fails after librdkafka's own retries is
 * produced again: alerts are at-least-once, and the batch that owns it
 * does not finish (nor store its offsets) until it is acknowledged. The
 * failed ones wait in a queue, in the order their reports came, and are
 * produced again together: at once the first time, then after a delay
 * that doubles while deliveries keep failing (a topic that refuses every
 * write would otherwise be retried as fast as the broker answers), up to
 * RESEND_DELAY_MAX_MS; a failure that long after the one before starts it
 * afresh. While messages wait, /healthz says so.
 *
 * A fatal error ends an idempotent producer for good. journeyd then puts a
 * new producer in its place at once, and retires the old one: purged and
 * flushed, every message it had not had acknowledged comes back as a
 * failed delivery report and is produced again on the new producer, for
 * the same batch. Nothing in flight is abandoned.
 *
 * Dead letters (the messages with headers) carry what a producer sent us,
 * of any size. One larger than this producer may send (message.max.bytes),
 * or refused by the broker as too large, is produced cut: the first bytes
 * of its key and payload, and a "truncated" header with their whole sizes
 * (the whole message stays in the partition its "source" header names).
 * Failing instead would stop the stream at that message for good: it is
 * consumed again after every restart.
 */
#include <sys/queue.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journeyd.h"
#include "log.h"
#include "timestamp.h"

/* A message whose delivery failed, to be produced again. */
struct resend {
	TAILQ_ENTRY(resend)	 entry;
	char			*topic;
	void			*key, *payload;
	size_t			 keylen, len;
	int64_t			 timestamp;
	rd_kafka_headers_t	*headers;
	void			*opaque;
};
TAILQ_HEAD(resends, resend);

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
	size_t			 max_message;	/* message.max.bytes */
	struct resends		 resends;
	size_t			 nresends;
	struct event		*resend_ev;
	int			 resend_delay_ms;	/* of the next round */
	int64_t			 last_failure_ms;	/* monotonic */
	char			 resend_why[128];	/* the latest failure */
};

#define RESEND_DELAY_FIRST_MS	100
#define RESEND_DELAY_MAX_MS	10000

/* a message's bytes besides its key, payload and headers, and then some */
#define MESSAGE_OVERHEAD	4096
/* a dead letter the broker refused as too large, cut: headers included */
#define REFUSED_KEPT		4096

static int	producer_start(struct journeyd *);
static void	replace_producer(struct journeyd *);
static void	schedule_resends(struct kafka_sink *);

static size_t
headers_size(const rd_kafka_headers_t *hdrs)
{
	const char	*name;
	const void	*value;
	size_t		 n = 0, len;

	for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value,
	    &len) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		n += strlen(name) + len + 16;
	return n;
}

/*
 * Cuts a dead letter to room bytes with its headers, which gain
 * "truncated" (the whole sizes of its key and payload) unless an earlier
 * cut added it: the first bytes of its payload, and of its key up to half.
 */
static void
cut_dead_letter(rd_kafka_headers_t *hdrs, size_t *keylen, size_t *len,
    size_t room)
{
	const void	*had;
	size_t		 hadlen, used;
	char		 sizes[64];

	if (rd_kafka_header_get_last(hdrs, "truncated", &had, &hadlen) ==
	    RD_KAFKA_RESP_ERR__NOENT) {
		snprintf(sizes, sizeof(sizes), "key=%zu payload=%zu", *keylen,
		    *len);
		rd_kafka_header_add(hdrs, "truncated", -1, sizes, -1);
	}
	used = headers_size(hdrs);
	room = room > used ? room - used : 0;
	if (*keylen > room / 2)
		*keylen = room / 2;
	if (*len > room - *keylen)
		*len = room - *keylen;
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct journeyd		*env = opaque;
	struct kafka_sink	*sink = env->sink;
	rd_kafka_headers_t	*hdrs = NULL;
	struct resend		*r;
	size_t			 keylen = m->key_len, len = m->len;
	int64_t			 timestamp = rd_kafka_message_timestamp(m, NULL);
	int64_t			 now;

	(void)rk;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		batch_delivered(env, m->_private);
		return;
	}
	/* after message.timeout.ms: send it again rather than lose it */
	if (sink->nresends == 0)
		log_warnx("kafka: delivery to %s failed (%s); producing it "
		    "again", rd_kafka_topic_name(m->rkt),
		    rd_kafka_err2str(m->err));
	snprintf(sink->resend_why, sizeof(sink->resend_why), "%s: %s",
	    rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
	/*
	 * Failures a while apart start afresh; close ones back off (other
	 * topics' deliveries may well succeed meanwhile).
	 */
	now = timestamp_monotonic_ms();
	if (now - sink->last_failure_ms > RESEND_DELAY_MAX_MS)
		sink->resend_delay_ms = 0;
	sink->last_failure_ms = now;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->topic = strdup(rd_kafka_topic_name(m->rkt))) == NULL ||
	    (r->key = malloc(keylen + 1)) == NULL ||
	    (r->payload = malloc(len + 1)) == NULL)
		fatal("kafka: a message to produce again");
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
		r->headers = rd_kafka_headers_copy(hdrs);
	/* the broker would refuse it again: a dead letter is cut */
	if (r->headers != NULL &&
	    (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
	    m->err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE) &&
	    keylen + len + headers_size(r->headers) > REFUSED_KEPT) {
		cut_dead_letter(r->headers, &keylen, &len, REFUSED_KEPT);
		log_warnx("kafka: dead letter cut to %zu bytes of its payload",
		    len);
	}
	if (keylen > 0)
		memcpy(r->key, m->key, keylen);
	if (len > 0)
		memcpy(r->payload, m->payload, len);
	r->keylen = m->key != NULL ? keylen : 0;
	r->len = len;
	r->timestamp = timestamp > 0 ? timestamp : 0;
	r->opaque = m->_private;
	TAILQ_INSERT_TAIL(&sink->resends, r, entry);
	sink->nresends++;
	/* the report may come before the fatal error is reported */
	if (rd_kafka_fatal_error(sink->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
		replace_producer(env);
	schedule_resends(sink);
}

static void
free_resend(struct resend *r)
{
	if (r->headers != NULL)
		rd_kafka_headers_destroy(r->headers);
	free(r->topic);
	free(r->key);
	free(r->payload);
	free(r);
}

/* A round of the failed messages, in order, on the current producer. */
static void
on_resend(evutil_socket_t fd, short what, void *arg)
{
	struct journeyd		*env = arg;
	struct kafka_sink	*sink = env->sink;
	struct resend		*r;
	rd_kafka_resp_err_t	 err;
	const void		*key;
	size_t			 sent = 0;

	(void)fd;
	(void)what;
	while ((r = TAILQ_FIRST(&sink->resends)) != NULL) {
		key = r->keylen > 0 ? r->key : NULL;
		err = rd_kafka_producev(sink->rk,
		    RD_KAFKA_V_TOPIC(r->topic),
		    RD_KAFKA_V_KEY(key, r->keylen),
		    RD_KAFKA_V_VALUE(r->payload, r->len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_TIMESTAMP(r->timestamp),
		    RD_KAFKA_V_HEADERS(r->headers),
		    RD_KAFKA_V_OPAQUE(r->opaque),
		    RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			/* the rest wait with it, in order, for the next round */
			snprintf(sink->resend_why, sizeof(sink->resend_why),
			    "%s: %s", r->topic, rd_kafka_err2str(err));
			log_warnx("kafka: cannot produce again to %s: %s; %zu "
			    "messages wait %d ms", r->topic,
			    rd_kafka_err2str(err), sink->nresends,
			    sink->resend_delay_ms);
			break;
		}
		r->headers = NULL;	/* the message's now */
		TAILQ_REMOVE(&sink->resends, r, entry);
		sink->nresends--;
		free_resend(r);
		sink->resent++;
		sent++;
	}
	if (sent > 0)
		log_info("kafka: %zu messages produced again", sent);
	schedule_resends(sink);
}

/*
 * The next round, if messages wait and none is scheduled: each one a step
 * later than the one before.
 */
static void
schedule_resends(struct kafka_sink *sink)
{
	struct timeval	tv;

	if (sink->nresends == 0 || evtimer_pending(sink->resend_ev, NULL))
		return;
	tv.tv_sec = sink->resend_delay_ms / 1000;
	tv.tv_usec = (sink->resend_delay_ms % 1000) * 1000;
	evtimer_add(sink->resend_ev, &tv);
	sink->resend_delay_ms = sink->resend_delay_ms == 0 ?
	    RESEND_DELAY_FIRST_MS : sink->resend_delay_ms * 2;
	if (sink->resend_delay_ms > RESEND_DELAY_MAX_MS)
		sink->resend_delay_ms = RESEND_DELAY_MAX_MS;
}

size_t
kafka_sink_failing(struct journeyd *env, char *why, size_t size)
{
	if (env->sink == NULL || env->sink->nresends == 0)
		return 0;
	snprintf(why, size, "%s", env->sink->resend_why);
	return env->sink->nresends;
}

uint64_t
kafka_sink_resent(struct journeyd *env)
{
	return env->sink != NULL ? env->sink->resent : 0;
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
	char			 errstr[512], limit[32];
	size_t			 limitlen = sizeof(limit);

	if ((kc = kafka_conf_client(env, CONFIG_SCOPE_PRODUCER)) == NULL)
		return -1;
	if (rd_kafka_conf_get(kc, "message.max.bytes", limit, &limitlen) !=
	    RD_KAFKA_CONF_OK) {
		log_warnx("kafka producer: no message.max.bytes");
		goto fail;
	}
	sink->max_message = strtoul(limit, NULL, 10);
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
	TAILQ_INIT(&sink->resends);
	env->sink = sink;
	if (pipe2(sink->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_warn("pipe");
		return -1;
	}
	if ((sink->wake_ev = event_new(env->base, sink->wake[0],
	    EV_READ | EV_PERSIST, on_wake, env)) == NULL ||
	    event_add(sink->wake_ev, NULL) == -1 ||
	    (sink->retire_ev = event_new(env->base, -1, 0, on_retire,
	    env)) == NULL ||
	    (sink->resend_ev = evtimer_new(env->base, on_resend, env)) == NULL)
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
    size_t keylen, const void *payload, size_t len, int64_t timestamp_ms,
    rd_kafka_headers_t *headers, void *opaque)
{
	struct kafka_sink	*sink = env->sink;
	rd_kafka_resp_err_t	 err;
	size_t			 room;
	int			 tries = 0;

	/* librdkafka counts a record's own bytes too: keep well clear */
	if (headers != NULL && keylen + len + headers_size(headers) +
	    MESSAGE_OVERHEAD > sink->max_message) {
		room = sink->max_message / 2;
		if (sink->max_message > 2 * MESSAGE_OVERHEAD)
			room = sink->max_message - MESSAGE_OVERHEAD;
		cut_dead_letter(headers, &keylen, &len, room);
		log_warnx("kafka: dead letter cut to %zu bytes of its payload, "
		    "to fit message.max.bytes", len);
	}
	do {
		err = rd_kafka_producev(sink->rk,
		    RD_KAFKA_V_TOPIC(topic),
		    RD_KAFKA_V_KEY(key, keylen),
		    RD_KAFKA_V_VALUE((void *)payload, len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_TIMESTAMP(timestamp_ms),
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
	struct resend		*r;
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
	if (sink->nresends > 0)
		log_warnx("kafka: %zu messages failed to be delivered at exit",
		    sink->nresends);
	while ((r = TAILQ_FIRST(&sink->resends)) != NULL) {
		TAILQ_REMOVE(&sink->resends, r, entry);
		free_resend(r);
	}
	if (sink->resend_ev != NULL)
		event_free(sink->resend_ev);
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
