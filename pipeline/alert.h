/*
 * alert.h: alerts journeyd emits, as self-explanatory JSON keyed by
 * customer, each with a stable alert_id derived from what caused it.
 */
#ifndef JOURNEYD_ALERT_H
#define JOURNEYD_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "journey.h"

#define ALERT_ID_LEN	33	/* 32 hex digits and NUL */

/* What a change happened to, and the event behind it if there was one. */
struct alert_origin {
	const char		*customer_id;
	const struct event	*event;		/* NULL for a timer's change */
	const char		*topic;
	int32_t			 partition;
	int64_t			 offset;
};

/* "stage_change", "churn_risk", "churned" or "reactivated" */
const char *alert_type(enum journey_change_kind kind);

/*
 * The same customer, change and cause always give the same id, so a
 * replayed alert repeats its id and consumers can drop the copy. The
 * cause is the deadline for changes silence made (a timer and a late
 * event settle it alike), else the event_id when the event has one, else
 * its Kafka coordinates.
 */
void	alert_id(const struct journey_model *m, const struct journey_change *c,
	    const struct alert_origin *o, char id[ALERT_ID_LEN]);

/*
 * Where alert_encode() writes an alert's text (p, len bytes and a NUL),
 * kept from one alert to the next: alerts are made on the hot path, and
 * the producer copies each into a message of its own.
 */
struct alert_text {
	char	*p;
	size_t	 len, cap;
	int	 failed;
};

/*
 * The JSON text of the alert for change c, whose id alert_id() gave, in t
 * (replacing what it held); -1 if t cannot grow to hold it.
 */
int	alert_encode(const struct journey_model *m,
	    const struct journey_change *c, const struct alert_origin *o,
	    const char id[ALERT_ID_LEN], struct alert_text *t);
void	alert_text_free(struct alert_text *t);

#endif
