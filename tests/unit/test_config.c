/*
 * test_config.c: config loading, defaults, and FILE:LINE refusals.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char	path[64];

static int
load(const char *text, struct config **conf, char err[CONFIG_ERR_MAX])
{
	FILE	*f;
	int	 fd;

	strcpy(path, "/tmp/journeyd-test-XXXXXX");
	assert_true((fd = mkstemp(path)) != -1);
	assert_non_null(f = fdopen(fd, "w"));
	fputs(text, f);
	fclose(f);
	*conf = NULL;
	return config_load(path, conf, err);
}

static void
expect_error(const char *text, int line, const char *what)
{
	struct config	*conf;
	char		 err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX];

	assert_int_equal(load(text, &conf, err), -1);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)) != 0 || strstr(err, what) == NULL)
		fail_msg("got '%s', want '%s...%s'", err, want, what);
	assert_null(strchr(err, '\n'));
	assert_null(conf);
	unlink(path);
}

static void
test_defaults(void **state)
{
	struct config	*c;
	char		 err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(load("# nothing set\n\n", &c, err), 0);
	assert_string_equal(c->brokers, "127.0.0.1:9092");
	assert_string_equal(c->group, "journeyd");
	assert_int_equal(c->ninput, 1);
	assert_string_equal(c->input_topic[0], "touchpoints");
	assert_string_equal(c->topic_dead_letter, "journey.dead-letter");
	assert_string_equal(c->redis_host, "127.0.0.1");
	assert_int_equal(c->redis_port, 6379);
	assert_null(c->redis_password);
	assert_string_equal(c->redis_prefix, "journey:");
	assert_int_equal(c->model.nstages, 5);
	assert_string_equal(c->model.stage[0], "awareness");
	assert_string_equal(c->model.stage[4], "loyalty");
	assert_int_equal(journey_model_stage_of(&c->model, "purchase"), 2);
	assert_int_equal(c->clock, CONFIG_CLOCK_WALL);
	assert_true(journey_model_trait(&c->model, "complaint")->pain);
	assert_true(journey_model_trait(&c->model, "complaint")->sentiment <
	    0);
	assert_null(journey_model_trait(&c->model, "purchase"));
	/* survey answers speak for the customer's feelings */
	assert_string_equal(journey_model_trait(&c->model, "nps")->
	    scale.property, "score");
	assert_true(journey_model_trait(&c->model, "nps")->scale.hi == 10);
	assert_true(journey_model_trait(&c->model, "csat")->scale.lo == 1);
	assert_int_equal(journey_model_cadence(&c->model, 3),
	    INT64_C(30) * 86400000);
	assert_int_equal(c->model.churn.after_ms, INT64_C(90) * 86400000);
	assert_string_equal(journey_model_map_segment(&c->model, "25-34"),
	    "other");
	assert_string_equal(c->http_host, "127.0.0.1");
	assert_int_equal(c->http_port, 9187);
	assert_int_equal(c->health_max_lag, 100000);
	config_free(c);
	unlink(path);
}

static void
test_journey_map_keys(void **state)
{
	struct config	*c;
	char		 err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(load("stage.lead = visit\n"
	    "stage.customer = purchase\n"
	    "churn.cadence = 12h\n"
	    "churn.cadence.customer = 14d\n"
	    "churn.after = 0ms\n"
	    "churn.medium = 0.3\n"
	    "churn.high = 0.8\n"
	    "churn.hysteresis = 0.05\n"
	    "churn.weight.pain = 0.5\n"
	    /* 104 days: in ms a number above 100000 * 86400 */
	    "decay.half_life = 9000000000ms\n"
	    "pain = late_delivery, complaint\n"
	    "sentiment.praise = 0.9\n"
	    "sentiment.survey = answers.happy -5..5\n"
	    "sentiment.nps = -0.5\n"
	    "segments = 18-24, 25-34, United Kingdom\n"
	    "clock = event\n"
	    "clock.lateness = 90s\n", &c, err), 0);
	assert_int_equal(journey_model_cadence(&c->model, 0), 12 * 3600000);
	assert_int_equal(journey_model_cadence(&c->model, 1),
	    INT64_C(14) * 86400000);
	assert_int_equal(c->model.churn.after_ms, 0);
	assert_true(c->model.churn.threshold[CHURN_MEDIUM] == 0.3);
	assert_true(c->model.churn.threshold[CHURN_HIGH] == 0.8);
	assert_true(c->model.churn.hysteresis == 0.05);
	assert_true(c->model.churn.weight[CHURN_PAIN] == 0.5);
	assert_int_equal(c->model.churn.half_life_ms, INT64_C(9000000000));
	/* a pain line replaces the default pain points */
	assert_true(journey_model_trait(&c->model, "late_delivery")->pain);
	assert_false(journey_model_trait(&c->model, "refund")->pain);
	assert_true(journey_model_trait(&c->model, "praise")->sentiment ==
	    0.9);
	assert_string_equal(journey_model_trait(&c->model, "survey")->
	    scale.property, "answers.happy");
	assert_true(journey_model_trait(&c->model, "survey")->scale.lo == -5);
	/* a number in place of the default scale: fixed */
	assert_string_equal(journey_model_trait(&c->model, "nps")->
	    scale.property, "");
	assert_true(journey_model_trait(&c->model, "nps")->sentiment == -0.5);
	assert_string_equal(journey_model_map_segment(&c->model, "25-34"),
	    "25-34");
	assert_string_equal(journey_model_map_segment(&c->model, "55+"),
	    "other");
	assert_string_equal(journey_model_map_segment(&c->model,
	    "United Kingdom"), "United Kingdom");
	assert_int_equal(c->clock, CONFIG_CLOCK_EVENT);
	assert_int_equal(c->clock_lateness_ms, 90000);
	config_free(c);
	unlink(path);
}

static void
test_values(void **state)
{
	struct config	*c;
	char		 err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(load("brokers = 10.0.0.1:9092,10.0.0.2:9092\n"
	    "group = g1\n"
	    "topic.input = a, b.c\n"
	    "redis = /run/redis.sock\n"
	    "redis.password = s3cr=t\n"
	    "kafka.consumer.session.timeout.ms = 45000\n"
	    "kafka.linger.ms = 2\n"
	    "stage.lead = signup\n"
	    "stage.customer = purchase, renewal, nps.score >= 9\n"
	    "stage.fan = purchase >= 3\n"
	    "demote.lead = account_closed\n"
	    "max_inflight = 100\n"
	    "http = [::1]:8080\n"
	    "health.max_lag = 5\n"
	    "log_level = debug\n", &c, err), 0);
	assert_string_equal(c->http_host, "::1");
	assert_int_equal(c->http_port, 8080);
	assert_int_equal(c->health_max_lag, 5);
	assert_int_equal(c->ninput, 2);
	assert_string_equal(c->input_topic[1], "b.c");
	assert_string_equal(c->redis_unix, "/run/redis.sock");
	assert_null(c->redis_host);
	assert_string_equal(c->redis_password, "s3cr=t");
	assert_int_equal(c->nprops, 2);
	assert_int_equal(c->props[0].scope, CONFIG_SCOPE_CONSUMER);
	assert_string_equal(c->props[0].name, "session.timeout.ms");
	assert_int_equal(c->props[1].scope, CONFIG_SCOPE_BOTH);
	assert_int_equal(c->model.nstages, 3);
	assert_int_equal(c->model.nrules, 6);
	assert_int_equal(journey_model_stage_of(&c->model, "renewal"), 1);
	/* count, property and demotion rules are not plain promotions */
	assert_int_equal(journey_model_stage_of(&c->model, "account_closed"),
	    JOURNEY_NO_STAGE);
	assert_int_equal(journey_model_stage_of(&c->model, "nps"),
	    JOURNEY_NO_STAGE);
	assert_int_equal(journey_model_stage_of(&c->model, "ad_click"),
	    JOURNEY_NO_STAGE);
	assert_int_equal(c->max_inflight, 100);
	assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
	config_free(c);
	unlink(path);
	/*
	 * A byte order mark before the first line; demotions that events'
	 * properties, or a count reached once, tell from the promotions.
	 */
	assert_int_equal(load("\xef\xbb\xbf# journeyd\n"
	    "stage.lead = signup\n"
	    "stage.fan = nps.score >= 9, referral = 2\n"
	    "demote.lead = nps.score <= 3, referral\n", &c, err), 0);
	assert_int_equal(c->model.nrules, 5);
	config_free(c);
	unlink(path);
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error("group = a\nbogus = 1\n", 2, "unknown key 'bogus'");
	/* what the file held is echoed, but never as controls or bad UTF-8 */
	expect_error("bogus\x1b[2J\xc2\x9b = 1\n", 1,
	    "unknown key 'bogus?[2J?\?'");
	expect_error("cl\xc3\xa9\xff\xfe = 1\n", 1,
	    "unknown key 'cl\xc3\xa9?\?'");
	expect_error("\n\njust words\n", 3, "expected 'key = value'");
	expect_error("group = a\ngroup = b\n", 2, "already set at line 1");
	expect_error("redis = example.com:6379\n", 1, "not an IP address");
	expect_error("redis = 127.0.0.1:99999\n", 1, "from 1 to 65535");
	expect_error("redis = 127.0.0.1\n", 1, "not HOST:PORT");
	expect_error("http = localhost\n", 1, "http: 'localhost' is not "
	    "HOST:PORT");
	expect_error("http = example.com:80\n", 1, "not an IP address");
	expect_error("http = 127.0.0.1:0\n", 1, "http port");
	expect_error("health.max_lag = -1\n", 1, "from 0 to");
	expect_error("kafka.no.such.property = 1\n", 1,
	    "kafka.no.such.property");
	expect_error("kafka.fetch.wait.max.ms = soon\n", 1, "Invalid value");
	expect_error("kafka.linger.ms = 1\nkafka.linger.ms = 2\n", 2,
	    "kafka.linger.ms: already set at line 1");
	expect_error("kafka.enable.auto.offset.store = true\n", 1,
	    "set by journeyd itself; leave it out");
	/* latest would skip what Kafka holds; journeyd judges a reset */
	expect_error("kafka.consumer.auto.offset.reset = latest\n", 1,
	    "set by journeyd itself; leave it out");
	expect_error("kafka.topic.auto.offset.reset = latest\n", 1,
	    "set by journeyd itself; leave it out");
	expect_error("kafka.consumer.group.id = g\n", 1,
	    "set by journeyd itself; use the group key");
	expect_error("kafka.bootstrap.servers = 127.0.0.1:9092\n", 1,
	    "set by journeyd itself; use the brokers key");
	/* set after the operator's lines: it would be ignored unsaid */
	expect_error("kafka.producer.queue.buffering.max.messages = 10\n", 1,
	    "set by journeyd itself");
	expect_error("kafka.consumer.statistics.interval.ms = 0\n", 1,
	    "tell when brokers are up again");
	/* librdkafka reads these as 0 too */
	expect_error("kafka.statistics.interval.ms = 0x0\n", 1,
	    "tell when brokers are up again");
	expect_error("kafka.consumer.statistics.interval.ms = 0.5\n", 1,
	    "tell when brokers are up again");
	expect_error("kafka.statistics.interval.ms = 0\n", 1,
	    "tell when brokers are up again");
	expect_error("topic.input = ok, bad topic\n", 1,
	    "not a valid Kafka topic name");
	expect_error("group = g\ntopic.input = ok, "
	    "t1234567890123456789012345678901234567890123456789"
	    "01234567890123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678\n", 2,
	    "longer than 148 characters");
	expect_error("max_inflight = 0\n", 1, "from 1 to");
	expect_error("max_inflight = 12x\n", 1, "not a whole number");
	expect_error("log_level = loud\n", 1, "not warn, info or debug");
	expect_error("stage.a = x\nstage.b = y, x\n", 2,
	    "'x' already leads to stage 'a'");
	expect_error("stage.a = x\nstage.a = y\n", 2, "defined twice");
	expect_error("stage.a = purchase >=\n", 1, "expected a number");
	expect_error("stage.a = purchase >= 2x\n", 1, "expected a number");
	expect_error("stage.a = nps.score\n", 1, "needs a comparison");
	expect_error("stage.a = purchase <= 2\n", 1,
	    "a count rule needs >=, > or =");
	expect_error("stage.a = purchase ~ 2\n", 1, "expected >=, >, <=");
	expect_error("stage.a = x\ndemote.b = y\n", 2, "no stage 'b'");
	expect_error("demote.retention = churn\nstage.a = x\n", 2,
	    "stage lines must come before lines that name a stage");
	/* demotions that promotions undo on the same events */
	expect_error("stage.a = visit\nstage.b = upgrade\n"
	    "demote.a = upgrade\n", 3, "'upgrade' also leads to stage 'b'");
	expect_error("stage.a = visit\nstage.b = buy >= 2\n"
	    "demote.a = login, buy\n", 3, "'buy' also leads to stage 'b'");
	expect_error("stage.a = visit\nstage.b = x\ndemote.a = y\n"
	    "demote.a = z\n", 4, "already set at line 3");
	expect_error("topic.churn_risk = out\ntopic.dead_letter = out\n", 2,
	    "'out' also carries alerts");
	expect_error("topic.dead_letter = journey.stage-change\n", 1,
	    "also carries alerts");
	expect_error("brokers = ,,,\n", 1, "an empty entry");
	expect_error("brokers = a:1,,b:2\n", 1, "an empty entry");
	expect_error("brokers = a:1,\n", 1, "an empty entry");
	expect_error("brokers = a:1, ,b:2\n", 1, "an empty entry");
	expect_error("redis.password =\n", 1, "redis.password: empty");
	expect_error("segments = gold, \xd6sterreich\n", 1,
	    "not valid UTF-8");
	expect_error("segments = gold, a\xc2\x9b" "b\n", 1,
	    "no braces or control characters");
	expect_error("redis.prefix = a{b}\n", 1, "no braces");
	expect_error("redis.prefix = "
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "4\n", 1, "longer than 64 bytes");
	expect_error("churn.cadence = 30\n", 1, "not a duration");
	expect_error("churn.cadence = 0d\n", 1, "from 1 ms to 100000 days");
	/* the limit is on the duration, whatever its unit */
	expect_error("churn.after = 100001d\n", 1, "from 0 ms to 100000 days");
	expect_error("churn.after = 8640000000001ms\n", 1, "to 100000 days");
	expect_error("topic.input = a, b, a\n", 1, "'a' is named twice");
	/* keys of a family may appear once each, like any other */
	expect_error("churn.weight.pain = 0.3\nchurn.weight.pain = 0.9\n", 2,
	    "churn.weight.pain: already set at line 1");
	expect_error("sentiment.praise = 0.9\nsentiment.praise = 0.8\n", 2,
	    "sentiment.praise: already set at line 1");
	expect_error("stage.a = x\nchurn.cadence.a = 1d\nchurn.cadence.a = 2d\n",
	    3, "churn.cadence.a: already set at line 2");
	expect_error("topic.dead_letter = x\ntopic.input = a, x\n", 2,
	    "topic.input: 'x' is also topic.dead_letter");
	expect_error("topic.input = journey.churn-risk\n", 1,
	    "is also topic.churn_risk");
	expect_error("redis = /run/"
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "456789012345678901234567890123456789012345678901234567890123456"
	    "789\n", 1, "socket path longer than 107 bytes");
	expect_error("churn.cadence.nowhere = 3d\n", 1, "no stage 'nowhere'");
	expect_error("churn.cadence.decision = 3d\nstage.a = x\n", 2,
	    "stage lines must come before");
	expect_error("churn.medium = 1.5\n", 1, "from 0 to 1");
	expect_error("churn.high = 0.3\nlog_level = info\n", 1,
	    "churn.medium (0.3, the default) must be above 0 and below "
	    "churn.high (0.3)");
	expect_error("churn.medium = 0.05\n", 1, "churn.hysteresis (0.1, the "
	    "default) must be below churn.medium (0.05)");
	expect_error("churn.weight.inactivity = 0\nchurn.weight.pain = 0\n"
	    "churn.weight.sentiment = 0\nchurn.weight.engagement = 0\n", 4,
	    "at least one weight");
	expect_error("churn.weight.mood = 1\n", 1, "no score component 'mood'");
	expect_error("sentiment.complaint = -2\n", 1, "a number in [-1, 1]");
	expect_error("sentiment.nps = score\n", 1, "a property and its range");
	expect_error("sentiment.nps = score 10..0\n", 1, "LO below HI");
	expect_error("sentiment.nps = score -1e308..1e308\n", 1,
	    "span a finite number");
	expect_error("sentiment.nps = score 0..ten\n", 1, "LO..HI");
	expect_error("sentiment.nps = sc!ore 0..10\n", 1,
	    "a property and its range");
	expect_error("sentiment.nps = a..b 0..10\n", 1,
	    "a property and its range");
	expect_error("kafka.statistics.interval.ms = 00\n", 1,
	    "tell when brokers are up again");
	expect_error("segments = a, a\n", 1, "'a' is given twice");
	expect_error("segments = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,"
	    "18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33\n", 1,
	    "'33' is given twice, or is one more than the 32 segments "
	    "allowed");
	expect_error("segments = a{b}\n", 1, "no braces");
	expect_error("pain = ok, not ok\n", 1, "use letters, digits");
	expect_error("clock = sundial\n", 1, "not wall or event");
	/* librdkafka's range errors end in a newline; ours do not */
	expect_error("kafka.consumer.session.timeout.ms = 0\n", 1, "range");
}

static char	kept[512];

static void
record_kept(const char *key)
{
	strcat(kept, key);
	strcat(kept, " ");
}

static void
test_keep_restart_keys(void **state)
{
	struct config	*running, *next;
	char		 err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(load("brokers = 10.0.0.1:9092\n"
	    "topic.input = a\n"
	    "redis = 127.0.0.1:7000\n"
	    "batch_max = 10\n"
	    "max_inflight = 100\n"
	    "stage.lead = visit\n", &running, err), 0);
	unlink(path);
	assert_int_equal(load("brokers = 10.0.0.9:9092\n"
	    "topic.input = a, b\n"
	    "redis = 127.0.0.1:7000\n"
	    "batch_max = 20\n"
	    "kafka.linger.ms = 5\n"
	    "http = off\n"
	    "max_inflight = 200\n"
	    "log_level = warn\n"
	    "stage.lead = visit\nstage.fan = referral\n", &next, err), 0);
	unlink(path);
	kept[0] = '\0';
	config_keep_restart_keys(next, running, record_kept);
	assert_string_equal(kept, "brokers topic.input kafka.* batch_max http ");
	/* restart-only keys stay as they run */
	assert_string_equal(next->brokers, "10.0.0.1:9092");
	assert_int_equal(next->ninput, 1);
	assert_string_equal(next->input_topic[0], "a");
	assert_int_equal(next->nprops, 0);
	assert_int_equal(next->batch_max, 10);
	assert_string_equal(next->http_host, "127.0.0.1");
	assert_int_equal(next->redis_port, 7000);
	/* everything else comes into force */
	assert_int_equal(next->max_inflight, 200);
	assert_int_equal(next->log_level, LOG_LEVEL_WARN);
	assert_int_equal(next->model.nstages, 2);
	/* the old config now owns what next brought: both free cleanly */
	assert_string_equal(running->brokers, "10.0.0.9:9092");
	assert_int_equal(running->ninput, 2);
	config_free(running);
	config_free(next);
	/* kafka.* lines in another order are the same settings */
	assert_int_equal(load("kafka.linger.ms = 5\n"
	    "kafka.consumer.fetch.wait.max.ms = 20\n", &running, err), 0);
	unlink(path);
	assert_int_equal(load("kafka.consumer.fetch.wait.max.ms = 20\n"
	    "kafka.linger.ms = 5\n", &next, err), 0);
	unlink(path);
	kept[0] = '\0';
	config_keep_restart_keys(next, running, record_kept);
	assert_string_equal(kept, "");
	config_free(running);
	config_free(next);
}

static void
test_long_path(void **state)
{
	struct config	*c = NULL;
	char		 err[CONFIG_ERR_MAX], dir[800], longpath[900];
	size_t		 len;
	FILE		*f;

	(void)state;
	/* a path that alone fills the error buffer must not overflow it */
	len = (size_t)snprintf(dir, sizeof(dir), "/tmp/journeyd-test-long");
	mkdir(dir, 0700);
	for (int i = 0; i < 3; i++) {
		len += (size_t)snprintf(dir + len, sizeof(dir) - len, "/%0200d",
		    i);
		assert_int_equal(mkdir(dir, 0700) == 0 || errno == EEXIST, 1);
	}
	snprintf(longpath, sizeof(longpath), "%s/bad.conf", dir);
	assert_non_null(f = fopen(longpath, "w"));
	fputs("what is this\n", f);
	fclose(f);
	assert_int_equal(config_load(longpath, &c, err), -1);
	assert_true(strlen(err) < CONFIG_ERR_MAX);
	assert_int_equal(strncmp(err, longpath, 100), 0);
	unlink(longpath);
}

static void
test_missing_file(void **state)
{
	struct config	*c = NULL;
	char		 err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(config_load("/nonexistent/journeyd.conf", &c, err), -1);
	assert_string_equal(err,
	    "/nonexistent/journeyd.conf: No such file or directory");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_journey_map_keys),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_keep_restart_keys),
		cmocka_unit_test(test_long_path),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
