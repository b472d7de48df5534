/*
 * fuzz_config.c: libFuzzer target for config_load (config/config.c).
 * Each input is written to one file, /tmp/fuzz_config.PID.conf (named once
 * per run, removed at exit), and loaded. A config that loads must hold
 * values the daemon can run with; a refused one must say so as
 * "PATH:LINE: ..." or "PATH: ...", on one line of valid UTF-8 without
 * control characters, whatever bytes the file echoed held. Inputs naming
 * librdkafka's plugin.library.paths are skipped: setting it dlopen()s the
 * named file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_config: %s:%d: " \
    "check failed: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

static char	path[64];

static void
remove_file(void)
{
	unlink(path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "/tmp/fuzz_config.%ld.conf",
	    (long)getpid());
	atexit(remove_file);
	return 0;
}

static void
check_loaded(const struct config *c)
{
	CHECK(strcmp(c->path, path) == 0);
	CHECK(c->brokers != NULL && c->brokers[0] != '\0');
	CHECK(c->group != NULL && c->group[0] != '\0');
	CHECK(c->ninput >= 1 && c->ninput <= CONFIG_TOPICS_MAX);
	for (int i = 0; i < c->ninput; i++)
		CHECK(c->input_topic[i] != NULL && c->input_topic[i][0] != '\0');
	CHECK(c->topic_stage_change && c->topic_churn_risk &&
	    c->topic_dead_letter);
	CHECK((c->redis_host == NULL) != (c->redis_unix == NULL));
	CHECK(c->redis_unix != NULL || (c->redis_port >= 1 &&
	    c->redis_port <= 65535));
	CHECK(c->redis_prefix != NULL &&
	    strpbrk(c->redis_prefix, "{} \t") == NULL);
	CHECK(c->event_max_bytes >= 64 && c->event_max_bytes <= 16777216);
	CHECK(c->max_inflight >= 1 && c->batch_max >= 1);
	CHECK(c->redis_timeout_ms >= 10 && c->drain_timeout_ms >= 0);
	CHECK(c->model.nstages >= 1 && c->model.nstages <= JOURNEY_STAGES_MAX);
	CHECK(c->model.nrules <= JOURNEY_RULES_MAX);
	for (size_t i = 0; i < c->model.nrules; i++) {
		CHECK(c->model.rule[i].stage >= 0 &&
		    c->model.rule[i].stage < c->model.nstages);
		/* a plain promotion rule is the one its type leads by */
		if (c->model.rule[i].kind == JOURNEY_RULE_EVENT &&
		    !c->model.rule[i].demote)
			CHECK(journey_model_stage_of(&c->model,
			    c->model.rule[i].type) == c->model.rule[i].stage);
	}
	for (size_t i = 0; i < c->nprops; i++)
		CHECK(c->props[i].name != NULL && c->props[i].value != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*c = NULL;
	char		 err[CONFIG_ERR_MAX];
	size_t		 plen = strlen(path);
	FILE		*f;

	if (memmem(data, size, "plugin", 6) != NULL)
		return 0;
	if ((f = fopen(path, "w")) == NULL ||
	    fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	if (config_load(path, &c, err) == 0) {
		CHECK(c != NULL);
		check_loaded(c);
		config_free(c);
	} else {
		CHECK(strnlen(err, sizeof(err)) < sizeof(err));
		CHECK(strncmp(err, path, plen) == 0 && err[plen] == ':');
		CHECK(event_text_utf8(err, strlen(err)) &&
		    !event_text_has_control(err, strlen(err)));
	}
	return 0;
}
