/*
 * alert.h: alerts journeyd emits, as self-explanatory JSON keyed by
 * customer, each with a stable alert_id derived from what caused it.
 */
#ifndef JOURNEYD_ALERT_H
#define JOURNEYD_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define ALERT_ID_LEN	33	/* 32 hex digits and NUL */

struct alert_origin {
	const struct event	*event;
	const char		*topic;
	int32_t			 partition;
	int64_t			 offset;
};

/*
 * The same customer, cause and outcome always give the same id, so a
 * replayed alert repeats its id and consumers can drop the copy. The cause
 * is the event_id when the event has one, else its Kafka coordinates.
 */
void	alert_id(const char *kind, const char *outcome,
	    const struct alert_origin *o, char id[ALERT_ID_LEN]);

/*
 * JSON text of a stage-change alert whose id alert_id() gave (kind
 * "stage_change", outcome the new stage); malloc'd, NULL on allocation
 * failure.
 */
char	*alert_encode_stage_change(const struct alert_origin *o,
	    const char *from, const char *to, const char id[ALERT_ID_LEN],
	    size_t *len);

#endif
