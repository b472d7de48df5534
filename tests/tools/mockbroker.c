/*
 * mockbroker.c: a throwaway Kafka cluster for journeyd's tests, built on
 * librdkafka's mock cluster. It owns the mock cluster, the producer handle
 * the mock needs for its bookkeeping, and a small control loop on stdin.
 *
 *   mockbroker [-b BROKERS] [-p DEFAULT_PARTITIONS] [TOPIC[:PARTITIONS] ...]
 *
 * The bootstrap list is printed as one line only once every named topic
 * exists, so a test may start clients the moment it reads that line.
 * Then each line on stdin is a command, answered by one line, "ok" or
 * "error: ...":
 *
 *   down ID | up ID            disconnect / reconnect a broker (-1 = all)
 *   rtt ID MS                  delay that broker's responses (-1 = all)
 *   error APIKEY CNT ERRCODE   fail the next CNT requests of that ApiKey
 *   brokererror ID APIKEY ERRCODE  fail that broker's next such request
 *   leader TOPIC PARTITION ID  move a partition's leadership
 *   coordinator group|transaction KEY BROKERID
 *   topic NAME PARTITIONS      create a topic
 *
 * It exits on SIGTERM, SIGINT or end of stdin: a test keeps stdin open on
 * a pipe, so a harness that dies takes the cluster with it (started with
 * stdin on /dev/null it exits at once).
 *
 * Mock cluster behaviour worth knowing (librdkafka 2.0.2):
 *  - a metadata request naming an unknown topic creates it, even from a
 *    consumer, with the mock's own 4 partitions whatever -p says: name
 *    every topic a test uses on the command line, or use "topic".
 *  - each partition keeps at most 5 MB / 100000 message sets and silently
 *    drops its oldest ones beyond that (the low watermark moves up).
 *  - partition leaders are picked at random among the brokers.
 *  - a group's first join takes about 3 s; a member that dies without
 *    leaving holds its partitions until its session.timeout.ms ends.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define PROG		"mockbroker"
#define LINE_MAX_LEN	4096
#define MAX_ARGS	6

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: " PROG " [-b brokers] [-p partitions] "
	    "[topic[:partitions] ...]\n");
	exit(2);
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
create_topic(rd_kafka_mock_cluster_t *mc, const char *name, long parts,
    char *err, size_t errlen)
{
	rd_kafka_resp_err_t	 rc;

	/*
	 * Replication factor 1: the mock does not replicate anyway, and with
	 * one replica "down ID" takes away exactly that broker's partitions.
	 */
	rc = rd_kafka_mock_topic_create(mc, name, (int)parts, 1);
	if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "topic %s: %s", name, rd_kafka_err2str(rc));
		return -1;
	}
	return 0;
}

static int
run_command(rd_kafka_mock_cluster_t *mc, char *line, char *err, size_t errlen)
{
	char			*av[MAX_ARGS], *save = NULL, *tok;
	int			 ac = 0;
	long			 id, n, cnt, code;
	rd_kafka_resp_err_t	 rc;

	for (tok = strtok_r(line, " \t\r", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t\r", &save)) {
		if (ac == MAX_ARGS) {
			snprintf(err, errlen, "too many arguments");
			return -1;
		}
		av[ac++] = tok;
	}
	if (ac == 0) {
		snprintf(err, errlen, "empty command");
		return -1;
	}

	if ((!strcmp(av[0], "down") || !strcmp(av[0], "up")) && ac == 2) {
		if (parse_long(av[1], -1, INT32_MAX, &id) == -1)
			goto badnum;
		rc = av[0][0] == 'd' ? rd_kafka_mock_broker_set_down(mc, id) :
		    rd_kafka_mock_broker_set_up(mc, id);
	} else if (!strcmp(av[0], "rtt") && ac == 3) {
		if (parse_long(av[1], -1, INT32_MAX, &id) == -1 ||
		    parse_long(av[2], 0, INT_MAX, &n) == -1)
			goto badnum;
		rc = rd_kafka_mock_broker_set_rtt(mc, id, (int)n);
	} else if (!strcmp(av[0], "error") && ac == 4) {
		rd_kafka_resp_err_t	*errs;

		if (parse_long(av[1], 0, INT16_MAX, &n) == -1 ||
		    parse_long(av[2], 1, 100000, &cnt) == -1 ||
		    parse_long(av[3], -10000, 10000, &code) == -1)
			goto badnum;
		if ((errs = calloc(cnt, sizeof(*errs))) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		for (long i = 0; i < cnt; i++)
			errs[i] = (rd_kafka_resp_err_t)code;
		rd_kafka_mock_push_request_errors_array(mc, (int16_t)n, cnt,
		    errs);
		free(errs);
		rc = RD_KAFKA_RESP_ERR_NO_ERROR;
	} else if (!strcmp(av[0], "brokererror") && ac == 4) {
		if (parse_long(av[1], 1, INT32_MAX, &id) == -1 ||
		    parse_long(av[2], 0, INT16_MAX, &n) == -1 ||
		    parse_long(av[3], -10000, 10000, &code) == -1)
			goto badnum;
		rc = rd_kafka_mock_broker_push_request_error_rtts(mc,
		    (int32_t)id, (int16_t)n, 1, (rd_kafka_resp_err_t)code, 0);
	} else if (!strcmp(av[0], "leader") && ac == 4) {
		if (parse_long(av[2], 0, INT32_MAX, &n) == -1 ||
		    parse_long(av[3], -1, INT32_MAX, &id) == -1)
			goto badnum;
		rc = rd_kafka_mock_partition_set_leader(mc, av[1], (int32_t)n,
		    (int32_t)id);
	} else if (!strcmp(av[0], "coordinator") && ac == 4) {
		if (strcmp(av[1], "group") && strcmp(av[1], "transaction")) {
			snprintf(err, errlen, "coordinator type must be "
			    "group or transaction");
			return -1;
		}
		if (parse_long(av[3], INT32_MIN, INT32_MAX, &id) == -1)
			goto badnum;
		rc = rd_kafka_mock_coordinator_set(mc, av[1], av[2], id);
	} else if (!strcmp(av[0], "topic") && ac == 3) {
		if (parse_long(av[2], 1, 100000, &n) == -1)
			goto badnum;
		return create_topic(mc, av[1], n, err, errlen);
	} else {
		snprintf(err, errlen, "unknown command or wrong arguments: %s",
		    av[0]);
		return -1;
	}

	if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "%s", rd_kafka_err2str(rc));
		return -1;
	}
	return 0;
badnum:
	snprintf(err, errlen, "bad number");
	return -1;
}

static int
reply(int rc, const char *err)
{
	if (rc == 0)
		printf("ok\n");
	else
		printf("error: %s\n", err);
	return fflush(stdout) == EOF ? -1 : 0;
}

/*
 * Raw read(2) behind poll(2) rather than stdio: a signal must end the wait
 * at once, and a half-typed line must not block the loop.
 */
static int
control_loop(rd_kafka_t *rk, rd_kafka_mock_cluster_t *mc)
{
	char	 buf[LINE_MAX_LEN], err[256], *nl;
	size_t	 len = 0, off;
	ssize_t	 r;

	while (!stopping) {
		struct pollfd	pfd = { .fd = STDIN_FILENO, .events = POLLIN };

		/* nothing queued, but serve the handle in case it logs */
		rd_kafka_poll(rk, 0);
		if (poll(&pfd, 1, 500) == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
			return -1;
		}
		if (pfd.revents == 0)
			continue;
		r = read(STDIN_FILENO, buf + len, sizeof(buf) - len);
		if (r == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, PROG ": stdin: %s\n", strerror(errno));
			return -1;
		}
		if (r == 0)
			return 0;
		len += (size_t)r;
		off = 0;
		while ((nl = memchr(buf + off, '\n', len - off)) != NULL) {
			*nl = '\0';
			if (reply(run_command(mc, buf + off, err, sizeof(err)),
			    err) == -1)
				return -1;
			off = (size_t)(nl - buf) + 1;
		}
		memmove(buf, buf + off, len - off);
		len -= off;
		if (len == sizeof(buf)) {
			len = 0;
			if (reply(-1, "line too long") == -1)
				return -1;
		}
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	rd_kafka_conf_t		*conf;
	rd_kafka_t		*rk;
	rd_kafka_mock_cluster_t	*mc;
	struct sigaction	 sa;
	char			 errstr[512], name[256];
	long			 nbrokers = 3, defparts = 4, parts;
	int			 ch, status = 0;

	while ((ch = getopt(argc, argv, "b:p:")) != -1) {
		switch (ch) {
		case 'b':
			if (parse_long(optarg, 1, 100, &nbrokers) == -1)
				usage();
			break;
		case 'p':
			if (parse_long(optarg, 1, 100000, &defparts) == -1)
				usage();
			break;
		default:
			usage();
		}
	}

	/* no SA_RESTART: the signal has to break poll(2) */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* a vanished reader shows up as a failed fflush, not a kill */
	signal(SIGPIPE, SIG_IGN);

	/*
	 * No bootstrap.servers: this handle only hosts the mock cluster, so
	 * its notice saying so is noise.
	 */
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr));
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
	    sizeof(errstr))) == NULL) {
		fprintf(stderr, PROG ": rd_kafka_new: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	if ((mc = rd_kafka_mock_cluster_new(rk, (int)nbrokers)) == NULL) {
		fprintf(stderr, PROG ": cannot create mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}

	for (int i = optind; i < argc && status == 0; i++) {
		size_t	len = strcspn(argv[i], ":");

		parts = defparts;
		if (argv[i][len] == ':' && parse_long(argv[i] + len + 1, 1,
		    100000, &parts) == -1) {
			fprintf(stderr, PROG ": bad partition count in %s\n",
			    argv[i]);
			status = 2;
		} else if (len == 0 || len >= sizeof(name)) {
			fprintf(stderr, PROG ": bad topic name in %s\n",
			    argv[i]);
			status = 2;
		} else {
			memcpy(name, argv[i], len);
			name[len] = '\0';
			if (create_topic(mc, name, parts, errstr,
			    sizeof(errstr)) == -1) {
				fprintf(stderr, PROG ": %s\n", errstr);
				status = 1;
			}
		}
	}

	if (status == 0) {
		printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
		if (fflush(stdout) == EOF || control_loop(rk, mc) == -1)
			status = 1;
	}

	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return status;
}
