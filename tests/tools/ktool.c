/*
 * ktool.c: the Kafka end of journeyd's tests: fills a topic from text
 * lines and dumps one as JSON lines. It owns one librdkafka client per run
 * and both line formats.
 *
 * ktool produce BROKERS TOPIC [-p] [NAME=VALUE ...]: each stdin line is
 * KEY<TAB>VALUE, or just
 * VALUE (no TAB, or an empty KEY: no key). \n, \t, \\ and \0 are decoded
 * in both, so tests can send newlines and NUL bytes; other backslash pairs
 * stay, so {"a":"x\"y"} arrives intact, but a JSON text's own \n, \t and
 * \\ are decoded too (write \\n for the two characters). Idempotent (-p:
 * not, so it asks the cluster for no producer id), Java
 * compatible (murmur2) keying, zstd; each NAME=VALUE is a header of every
 * message. Prints "produced N" on stderr, or fails with exit 1 if any
 * delivery failed.
 *
 * ktool consume BROKERS TOPIC [-n COUNT] [-t TIMEOUT_MS] [-f]: reads all
 * partitions from the beginning, joining no group, and prints a JSON
 * object per message: topic, partition, offset, key, value (bad UTF-8 as
 * U+FFFD, null payloads as null), headers, timestamp. Without -f it stops
 * at the end the topic had at start; with -f, once TIMEOUT_MS (10000)
 * pass without a message. -n stops after COUNT. Exit 1 if it ends short of
 * COUNT, or without -f short of the end. A missing topic is waited for.
 *
 * ktool committed BROKERS GROUP TOPIC PARTITIONS: prints "PARTITION OFFSET"
 * for partitions 0 to PARTITIONS - 1, the offsets GROUP has committed
 * (-1001: none), without joining the group.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#define PROG	"ktool"

static volatile sig_atomic_t stopping;

struct delivery {
	long			failed;
	rd_kafka_resp_err_t	first_err;
};

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: " PROG " produce brokers topic [-p] "
	    "[name=value ...]\n"
	    "       " PROG " consume brokers topic [-n count] [-t timeout_ms] "
	    "[-f]\n"
	    "       " PROG " committed brokers group topic partitions\n");
	exit(2);
}

static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct delivery	*d = opaque;

	(void)rk;
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && d->failed++ == 0)
		d->first_err = m->err;
}

static rd_kafka_t *
client_new(rd_kafka_type_t type, const char *brokers, const char *const *kv,
    struct delivery *delivery)
{
	rd_kafka_conf_t	*conf = rd_kafka_conf_new();
	rd_kafka_t	*rk;
	char		 errstr[512];

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
	    sizeof(errstr)) != RD_KAFKA_CONF_OK)
		goto bad;
	for (; kv[0] != NULL; kv += 2)
		if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr,
		    sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto bad;
	if (delivery != NULL) {
		rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
		rd_kafka_conf_set_opaque(conf, delivery);
	}
	if ((rk = rd_kafka_new(type, conf, errstr, sizeof(errstr))) != NULL)
		return rk;
bad:
	fprintf(stderr, PROG ": %s\n", errstr);
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* Decodes the four escapes in place; returns the new length. */
static size_t
unescape(char *s, size_t len)
{
	const char	*from = "nt\\0", *to = "\n\t\\\0", *hit;
	size_t		 i, o = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len &&
		    (hit = memchr(from, s[i + 1], 4)) != NULL) {
			s[o++] = to[hit - from];
			i++;
		} else
			s[o++] = s[i];
	}
	return o;
}

/* One message's headers: NAME=VALUE each; NULL for none. */
static rd_kafka_headers_t *
headers_of(int n, char *const hv[])
{
	rd_kafka_headers_t	*h;
	const char		*eq;

	if (n == 0)
		return NULL;
	h = rd_kafka_headers_new((size_t)n);
	for (int i = 0; i < n; i++) {
		if ((eq = strchr(hv[i], '=')) == NULL)
			eq = hv[i] + strlen(hv[i]);
		rd_kafka_header_add(h, hv[i], eq - hv[i], *eq ? eq + 1 : "",
		    -1);
	}
	return h;
}

static int
produce(const char *brokers, const char *topic, int nheaders,
    char *const header[])
{
	static const char *kv[] = {
		"enable.idempotence", "true",
		"linger.ms", "5",
		/* keyed like the Java clients, so partitions match theirs */
		"partitioner", "murmur2_random",
		/* the mock keeps 5 MB a partition: 1M events, not 200k, in 6 */
		"compression.codec", "zstd",
		/* tests send events of a few MB too */
		"message.max.bytes", "16000000",
		NULL,
	};
	struct delivery		 d = { 0, RD_KAFKA_RESP_ERR_NO_ERROR };
	rd_kafka_t		*rk;
	rd_kafka_topic_t	*rkt;
	rd_kafka_resp_err_t	 err;
	rd_kafka_headers_t	*hdrs;
	char			*line = NULL, *key, *val, *tab;
	size_t			 cap = 0, len, klen;
	ssize_t			 n;
	long			 lines = 0, lost;
	int			 status = 0;

	if (nheaders > 0 && strcmp(header[0], "-p") == 0) {
		kv[1] = "false";
		nheaders--;
		header++;
	}
	if ((rk = client_new(RD_KAFKA_PRODUCER, brokers, kv, &d)) == NULL)
		return 1;
	rkt = rd_kafka_topic_new(rk, topic, NULL);

	while ((n = getline(&line, &cap, stdin)) != -1) {
		len = (size_t)n - (line[n - 1] == '\n');
		key = NULL;
		klen = 0;
		val = line;
		if ((tab = memchr(line, '\t', len)) != NULL) {
			klen = unescape(line, (size_t)(tab - line));
			key = klen > 0 ? line : NULL;
			val = tab + 1;
			len -= (size_t)(val - line);
		}
		len = unescape(val, len);
		lines++;
		hdrs = headers_of(nheaders, header);
		/* a full queue only means librdkafka is behind: wait for it */
		while ((err = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
		    RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE(val, len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_HEADERS(hdrs),
		    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 50);
		/* taken by the message once produced */
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != NULL)
			rd_kafka_headers_destroy(hdrs);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR && d.failed++ == 0)
			d.first_err = err;
		rd_kafka_poll(rk, 0);
	}
	free(line);
	if (ferror(stdin)) {
		fprintf(stderr, PROG ": stdin: %s\n", strerror(errno));
		status = 1;
	}

	rd_kafka_flush(rk, 60 * 1000);
	/* whatever is still queued after the flush will never be delivered */
	if ((lost = rd_kafka_outq_len(rk)) > 0 && d.failed == 0)
		d.first_err = RD_KAFKA_RESP_ERR__TIMED_OUT;
	d.failed += lost;
	if (d.failed > 0) {
		fprintf(stderr, PROG ": %ld of %ld messages failed (first: %s)\n",
		    d.failed, lines, rd_kafka_err2str(d.first_err));
		status = 1;
	} else
		fprintf(stderr, "produced %ld\n", lines);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return status;
}

/* A JSON string of arbitrary bytes, invalid ones as U+FFFD; NULL as null. */
static json_t *
json_bytes(const void *data, size_t n)
{
	const unsigned char	*p = data;
	char			*buf;
	size_t			 i, k, o = 0;
	json_t			*j;

	if (data == NULL)
		return json_null();
	if ((j = json_stringn(data, n)) != NULL ||
	    (buf = malloc(n * 3)) == NULL)
		return j;
	/* jansson judges each sequence, as long as its lead byte says */
	for (i = 0; i < n; i += k) {
		k = p[i] < 0x80 ? 1 : p[i] < 0xc0 ? 0 : p[i] < 0xe0 ? 2 :
		    p[i] < 0xf0 ? 3 : p[i] < 0xf8 ? 4 : 0;
		if (k > 0 && k <= n - i &&
		    (j = json_stringn((const char *)p + i, k)) != NULL) {
			json_decref(j);
			memcpy(buf + o, p + i, k);
			o += k;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			k = 1;
		}
	}
	j = json_stringn_nocheck(buf, o);
	free(buf);
	return j;
}

static int
print_message(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t	*hdrs;
	json_t			*o, *h = json_object(), *name;
	const char		*hname;
	const void		*hval;
	size_t			 hlen;
	int			 rc;

	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
		for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &hname,
		    &hval, &hlen) == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
			name = json_bytes(hname, strlen(hname));
			json_object_set_new(h, json_string_value(name),
			    json_bytes(hval, hlen));
			json_decref(name);
		}
	o = json_pack("{s:s, s:i, s:I, s:o, s:o, s:o, s:I}",
	    "topic", rd_kafka_topic_name(m->rkt),
	    "partition", (int)m->partition,
	    "offset", (json_int_t)m->offset,
	    "key", json_bytes(m->key, m->key_len),
	    "value", json_bytes(m->payload, m->len),
	    "headers", h,
	    "timestamp", (json_int_t)rd_kafka_message_timestamp(m, NULL));
	rc = o != NULL ? json_dumpf(o, stdout, JSON_COMPACT) : -1;
	json_decref(o);
	if (rc == -1 || putchar('\n') == EOF || fflush(stdout) == EOF) {
		fprintf(stderr, PROG ": cannot print message: %s\n",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Partition count of topic, waiting up to timeout_ms for it to exist. It
 * asks for all topics: a request naming the topic would have the mock
 * cluster create it, with its default partition count.
 */
static int
topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
	const struct rd_kafka_metadata	*md;
	const struct rd_kafka_metadata_topic *t;
	rd_kafka_resp_err_t		 err;
	int64_t				 deadline = now_ms() + timeout_ms;
	struct timespec			 pause = { 0, 200 * 1000000 };
	int				 parts = -1;

	do {
		if ((err = rd_kafka_metadata(rk, 1, NULL, &md, 1000)) != 0)
			continue;
		err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
		for (t = md->topics; t < md->topics + md->topic_cnt; t++)
			if (!strcmp(t->topic, topic) && (err = t->err) == 0 &&
			    t->partition_cnt > 0)
				parts = t->partition_cnt;
		rd_kafka_metadata_destroy(md);
		if (parts == -1)
			nanosleep(&pause, NULL);
	} while (parts == -1 && !stopping && now_ms() < deadline);
	if (parts == -1)
		fprintf(stderr, PROG ": topic %s not available after %d ms: "
		    "%s\n", topic, timeout_ms, rd_kafka_err2str(err));
	return parts;
}

/* Each partition's end offset at the start, 0 for nothing to read. */
static int
end_offsets(rd_kafka_t *rk, const char *topic, int64_t *end, int nparts,
    int timeout_ms)
{
	rd_kafka_resp_err_t	err;
	int64_t			lo;
	int			p, open = 0;

	for (p = 0; p < nparts; p++) {
		err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo,
		    &end[p], timeout_ms);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, PROG ": %s [%d] watermarks: %s\n",
			    topic, p, rd_kafka_err2str(err));
			return -1;
		}
		/* the mock cluster trims partitions beyond 5 MB: say so */
		if (lo > 0)
			fprintf(stderr, PROG ": warning: %s [%d] starts at "
			    "offset %" PRId64 ", older messages are gone\n",
			    topic, p, lo);
		if (end[p] > lo)
			open++;
		else
			end[p] = 0;
	}
	return open;
}

static int
consume(const char *brokers, const char *topic, long count, int timeout_ms,
    int follow)
{
	static const char *const kv[] = {
		/* assign() needs a group handle; nothing joins or commits */
		"group.id", "ktool",
		"enable.auto.commit", "false",
		"enable.auto.offset.store", "false",
		"enable.partition.eof", "true",
		NULL,
	};
	rd_kafka_topic_partition_list_t	*parts;
	rd_kafka_message_t		*m;
	rd_kafka_t			*rk;
	int64_t				*end = NULL, last;
	int				 nparts, open = 0, status = 1, p;
	long				 seen = 0;

	if ((rk = client_new(RD_KAFKA_CONSUMER, brokers, kv, NULL)) == NULL)
		return 1;
	rd_kafka_poll_set_consumer(rk);
	if ((nparts = topic_partitions(rk, topic, timeout_ms)) == -1 ||
	    (end = calloc(nparts, sizeof(*end))) == NULL ||
	    (!follow && (open = end_offsets(rk, topic, end, nparts,
	    timeout_ms)) == -1))
		goto out;
	parts = rd_kafka_topic_partition_list_new(nparts);
	for (p = 0; p < nparts; p++)
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
		    RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);

	last = now_ms();
	while (!stopping && (follow || open > 0) && (count < 0 || seen < count)) {
		if ((m = rd_kafka_consumer_poll(rk, 100)) == NULL) {
			if (now_ms() - last >= timeout_ms)
				break;
			continue;
		}
		p = m->partition;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (!follow && end[p] > 0 && m->offset >= end[p]) {
				end[p] = 0;
				open--;
			}
		} else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
			fprintf(stderr, PROG ": %s\n", rd_kafka_message_errstr(m));
		else if (follow || m->offset < end[p]) {
			if (print_message(m) == -1) {
				rd_kafka_message_destroy(m);
				goto out;
			}
			seen++;
			last = now_ms();
			if (!follow && m->offset + 1 >= end[p]) {
				end[p] = 0;
				open--;
			}
		}
		rd_kafka_message_destroy(m);
	}

	if (count >= 0 ? seen < count : !follow && open > 0)
		fprintf(stderr, PROG ": saw %ld of %s%ld messages (%s)\n", seen,
		    count < 0 ? "more than " : "", count < 0 ? seen : count,
		    stopping ? "interrupted" : !follow && open == 0 ?
		    "end of topic" : "timed out");
	else
		status = 0;
out:
	free(end);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return status;
}

static int
parse_long(const char *s, long min, long max, long *out)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
committed(const char *brokers, const char *group, const char *topic,
    const char *count)
{
	const char *const		 kv[] = { "group.id", group, NULL, NULL };
	rd_kafka_topic_partition_list_t	*parts;
	rd_kafka_resp_err_t		 err;
	rd_kafka_t			*rk;
	long				 n;
	int				 rc = 1;

	if (parse_long(count, 1, 100000, &n) == -1)
		usage();
	if ((rk = client_new(RD_KAFKA_CONSUMER, brokers, kv, NULL)) == NULL)
		return 1;
	parts = rd_kafka_topic_partition_list_new((int)n);
	for (long i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(parts, topic, (int32_t)i);
	if ((err = rd_kafka_committed(rk, parts, 30000)) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, PROG ": committed: %s\n", rd_kafka_err2str(err));
		goto done;
	}
	for (int i = 0; i < parts->cnt; i++)
		printf("%" PRId32 " %" PRId64 "\n", parts->elems[i].partition,
		    parts->elems[i].offset);
	rc = 0;
done:
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk);
	return rc;
}

int
main(int argc, char *argv[])
{
	const char	*topic;
	long		 count = -1, timeout = 10000;
	int		 ch, follow = 0;

	if (argc >= 4 && !strcmp(argv[1], "produce"))
		return produce(argv[2], argv[3], argc - 4, argv + 4);
	if (argc == 6 && !strcmp(argv[1], "committed"))
		return committed(argv[2], argv[3], argv[4], argv[5]);
	if (argc < 4 || strcmp(argv[1], "consume"))
		usage();
	/* options follow the topic: getopt sees it as argv[0], so swap */
	topic = argv[3];
	argv[3] = argv[0];
	while ((ch = getopt(argc - 3, argv + 3, "+n:t:f")) != -1)
		if (ch == 'f')
			follow = 1;
		else if (ch == 'n' ? parse_long(optarg, 0, LONG_MAX, &count) :
		    ch == 't' ? parse_long(optarg, 1, INT_MAX, &timeout) : -1)
			usage();
	if (optind != argc - 3)
		usage();
	/* the loop polls in short steps and checks this between them */
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	return consume(argv[2], topic, count, (int)timeout, follow);
}
