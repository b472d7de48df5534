/*
 * nullpipe.c: the benchmark's ceiling, journeyd with the journey taken
 * out. It owns one librdkafka consumer-group member and one async hiredis
 * connection on one libevent loop, shaped like journeyd's own (consumer
 * queue woken through a pipe by rd_kafka_queue_io_event_enable, drained
 * on every wake; many pipelined writes in flight), and does per event the
 * least a consume-and-store pipeline can: one HSET, no parsing, no rules,
 * no alerts. Built for the benchmark only, never installed.
 *
 *   nullpipe -m pipe    -b BROKERS -t TOPIC -r IP:PORT -n EVENTS [options]
 *   nullpipe -m consume -b BROKERS -t TOPIC -n EVENTS [options]
 *   nullpipe -m redis   -r IP:PORT -n EVENTS [-c CUSTOMERS] [-w WINDOW]
 *
 * pipe: consume EVENTS messages and HSET null:{KEY} o OFFSET for each;
 * consume: the Kafka side alone; redis: the Redis side alone, EVENTS
 * HSETs over CUSTOMERS keys. -g GROUP (default nullpipe), -w WINDOW
 * writes in flight at most (default 20000, journeyd's max_inflight),
 * -X NAME=VALUE any librdkafka consumer property (journeyd's defaults
 * otherwise: fetch.wait.max.ms=10), -T SECONDS gives up after that long
 * without progress (default 60).
 *
 * Prints one line, "nullpipe MODE events=N seconds=S rate=R hwm_kb=K",
 * timed from the first message consumed (or command sent) to the last
 * reply (or message), so the group join does not count; K is its peak
 * RSS, what the clients alone hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#define PROG		"nullpipe"
#define DRAIN_BATCH	1000	/* messages per rd_kafka_consume_batch_queue */
#define MAX_PROPS	16

enum mode { MODE_PIPE, MODE_CONSUME, MODE_REDIS };

struct nullpipe {
	enum mode		 mode;
	struct event_base	*base;
	struct event		*wake_ev, *tick_ev;
	int			 wake[2];
	rd_kafka_t		*rk;
	rd_kafka_queue_t	*queue;
	redisAsyncContext	*ac;
	long long		 target, consumed, sent, replied;
	long long		 window, customers;
	long long		 last_progress, idle_limit;	/* seconds */
	double			 t_first, t_last;
	int			 failed;
};

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
peak_rss_kb(void)
{
	FILE	*f;
	char	 line[256];
	long	 kb = 0;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void
usage(void)
{
	fprintf(stderr, "usage: " PROG " -m pipe|consume|redis [-b brokers] "
	    "[-t topic] [-g group] [-r ip:port]\n"
	    "\t-n events [-c customers] [-w window] [-X name=value] "
	    "[-T idle_seconds]\n");
	exit(2);
}

static long long
parse_num(const char *s, long long min)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min)
		usage();
	return v;
}

static void
finish(struct nullpipe *np)
{
	np->t_last = now_s();
	event_base_loopbreak(np->base);
}

static void
progress(struct nullpipe *np)
{
	if (np->t_first == 0)
		np->t_first = now_s();
	np->last_progress = (long long)now_s();
}

static void
on_reply(redisAsyncContext *ac, void *r, void *arg)
{
	struct nullpipe	*np = arg;
	redisReply	*reply = r;

	(void)ac;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		if (!np->failed++)
			fprintf(stderr, PROG ": redis: %s\n", reply != NULL ?
			    reply->str : ac->errstr);
		event_base_loopbreak(np->base);
		return;
	}
	np->replied++;
	if (np->replied == np->target) {
		finish(np);
		return;
	}
	/* room again: let the wake handler take more, outside this callback */
	if (np->sent - np->replied == np->window / 2)
		event_active(np->wake_ev, EV_READ, 0);
}

/* Redis alone: keeps the window full of HSETs over the customer keys. */
static void
redis_fill(struct nullpipe *np)
{
	while (np->sent < np->target && np->sent - np->replied < np->window) {
		progress(np);
		redisAsyncCommand(np->ac, on_reply, np, "HSET null:{cust-%lld} "
		    "o %lld", np->sent % np->customers + 1, np->sent);
		np->sent++;
	}
}

/*
 * The io-event pipe is written only when the queue goes from empty to
 * non-empty, so every wake drains the queue, as far as the window lets.
 */
static void
kafka_drain(struct nullpipe *np)
{
	rd_kafka_message_t	*msgs[DRAIN_BATCH];
	ssize_t			 n, i;

	while (np->consumed < np->target &&
	    np->sent - np->replied < np->window) {
		n = rd_kafka_consume_batch_queue(np->queue, 0, msgs,
		    DRAIN_BATCH);
		if (n <= 0)
			return;
		for (i = 0; i < n; i++) {
			rd_kafka_message_t	*m = msgs[i];

			if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
			    np->consumed < np->target) {
				progress(np);
				np->consumed++;
				if (np->mode == MODE_PIPE) {
					redisAsyncCommand(np->ac, on_reply, np,
					    "HSET null:{%b} o %" PRId64,
					    m->key, m->key_len, m->offset);
					np->sent++;
				}
			} else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
			    m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				fprintf(stderr, PROG ": %s\n",
				    rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
		}
		if (np->mode == MODE_CONSUME && np->consumed == np->target)
			finish(np);
	}
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct nullpipe	*np = arg;
	char		 buf[256];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (np->mode == MODE_REDIS)
		redis_fill(np);
	else
		kafka_drain(np);
}

/*
 * Once a second: notice a stall. (The consumer's callbacks are served by
 * the drain: with rd_kafka_poll_set_consumer every op of the client
 * arrives on the queue it reads.)
 */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct nullpipe	*np = arg;

	(void)fd;
	(void)what;
	if ((long long)now_s() - np->last_progress > np->idle_limit) {
		fprintf(stderr, PROG ": no progress for %lld s (consumed %lld, "
		    "replies %lld)\n", np->idle_limit, np->consumed,
		    np->replied);
		np->failed++;
		event_base_loopbreak(np->base);
	}
}

static int
kafka_open(struct nullpipe *np, const char *brokers, const char *topic,
    const char *group, char **props, int nprops)
{
	const char *const	 defaults[] = {
		"bootstrap.servers", brokers,
		"group.id", group,
		"auto.offset.reset", "earliest",
		"enable.auto.commit", "false",
		"fetch.wait.max.ms", "10",
		NULL,
	};
	rd_kafka_conf_t			*conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t	*topics;
	char				 errstr[512], *eq;
	int				 i;

	for (i = 0; defaults[i] != NULL; i += 2)
		if (rd_kafka_conf_set(conf, defaults[i], defaults[i + 1],
		    errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto bad;
	for (i = 0; i < nprops; i++) {
		if ((eq = strchr(props[i], '=')) == NULL)
			usage();
		*eq = '\0';
		if (rd_kafka_conf_set(conf, props[i], eq + 1, errstr,
		    sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto bad;
	}
	if ((np->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
	    sizeof(errstr))) == NULL)
		goto bad;
	rd_kafka_poll_set_consumer(np->rk);
	np->queue = rd_kafka_queue_get_consumer(np->rk);
	rd_kafka_queue_io_event_enable(np->queue, np->wake[1], "1", 1);
	topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, topic,
	    RD_KAFKA_PARTITION_UA);
	if (rd_kafka_subscribe(np->rk, topics) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, PROG ": cannot subscribe to %s\n", topic);
		rd_kafka_topic_partition_list_destroy(topics);
		return -1;
	}
	rd_kafka_topic_partition_list_destroy(topics);
	return 0;
bad:
	fprintf(stderr, PROG ": %s\n", errstr);
	rd_kafka_conf_destroy(conf);
	return -1;
}

static int
redis_open(struct nullpipe *np, const char *addr)
{
	char	host[64];
	size_t	len;
	const char *colon = strrchr(addr, ':');

	if (colon == NULL || (len = (size_t)(colon - addr)) >= sizeof(host))
		usage();
	memcpy(host, addr, len);
	host[len] = '\0';
	np->ac = redisAsyncConnect(host, (int)parse_num(colon + 1, 1));
	if (np->ac == NULL || np->ac->err) {
		fprintf(stderr, PROG ": redis %s: %s\n", addr,
		    np->ac != NULL ? np->ac->errstr : "out of memory");
		return -1;
	}
	redisLibeventAttach(np->ac, np->base);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct nullpipe	 np;
	const char	*brokers = NULL, *topic = NULL, *group = "nullpipe";
	const char	*redis = NULL, *mode = NULL;
	char		*props[MAX_PROPS];
	struct timeval	 second = { 1, 0 };
	double		 secs;
	int		 ch, nprops = 0;

	memset(&np, 0, sizeof(np));
	np.window = 20000;
	np.customers = 100000;
	np.idle_limit = 60;
	np.target = -1;
	while ((ch = getopt(argc, argv, "m:b:t:g:r:n:c:w:X:T:")) != -1) {
		switch (ch) {
		case 'm':
			mode = optarg;
			break;
		case 'b':
			brokers = optarg;
			break;
		case 't':
			topic = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'r':
			redis = optarg;
			break;
		case 'n':
			np.target = parse_num(optarg, 1);
			break;
		case 'c':
			np.customers = parse_num(optarg, 1);
			break;
		case 'w':
			np.window = parse_num(optarg, 2);
			break;
		case 'T':
			np.idle_limit = parse_num(optarg, 1);
			break;
		case 'X':
			if (nprops == MAX_PROPS)
				usage();
			props[nprops++] = optarg;
			break;
		default: usage();
		}
	}
	if (mode == NULL || np.target < 0 || optind != argc)
		usage();
	if (!strcmp(mode, "pipe"))
		np.mode = MODE_PIPE;
	else if (!strcmp(mode, "consume"))
		np.mode = MODE_CONSUME;
	else if (!strcmp(mode, "redis"))
		np.mode = MODE_REDIS;
	else
		usage();
	if ((np.mode != MODE_REDIS && (brokers == NULL || topic == NULL)) ||
	    (np.mode != MODE_CONSUME && redis == NULL))
		usage();

	if ((np.base = event_base_new()) == NULL ||
	    pipe2(np.wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		fprintf(stderr, PROG ": cannot set up the loop\n");
		return 1;
	}
	np.wake_ev = event_new(np.base, np.wake[0], EV_READ | EV_PERSIST,
	    on_wake, &np);
	np.tick_ev = event_new(np.base, -1, EV_PERSIST, on_tick, &np);
	event_add(np.wake_ev, NULL);
	event_add(np.tick_ev, &second);
	np.last_progress = (long long)now_s();
	if (np.mode != MODE_CONSUME && redis_open(&np, redis) == -1)
		return 1;
	if (np.mode != MODE_REDIS) {
		if (kafka_open(&np, brokers, topic, group, props, nprops) == -1)
			return 1;
		/* messages may have queued before the pipe was armed */
		event_active(np.wake_ev, EV_READ, 0);
	} else
		redis_fill(&np);

	event_base_dispatch(np.base);

	secs = np.t_last - np.t_first;
	if (!np.failed && np.t_last > 0)
		printf("nullpipe %s events=%lld seconds=%.3f rate=%.0f "
		    "hwm_kb=%ld\n", mode, np.target, secs, secs > 0 ?
		    (double)np.target / secs : 0.0, peak_rss_kb());
	if (np.rk != NULL) {
		rd_kafka_queue_destroy(np.queue);
		rd_kafka_consumer_close(np.rk);
		rd_kafka_destroy(np.rk);
	}
	if (np.ac != NULL)
		redisAsyncFree(np.ac);
	event_free(np.wake_ev);
	event_free(np.tick_ev);
	event_base_free(np.base);
	return np.failed || np.t_last == 0 ? 1 : 0;
}
