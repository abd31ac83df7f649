/*
 * Benchmark floor (test only, never installed): a C row trigger that returns the row it is
 * given unchanged.  Its overhead over an UPDATE without a trigger is what any row trigger
 * costs (the executor fetches the old row, forms the new one as a heap tuple, calls
 * through fmgr; an AFTER trigger also queues the event), whatever the function does.
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(bench_noop_trigger);

Datum
bench_noop_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "bench_noop_trigger: not called as a trigger");
	if (TRIGGER_FIRED_BY_UPDATE(trig->tg_event))
		return PointerGetDatum(trig->tg_newtuple);
	return PointerGetDatum(trig->tg_trigtuple);
}
