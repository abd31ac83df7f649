// The extension's configuration parameters (all under the reserved prefix "virtuoso.").
#pragma once

namespace virtuoso::gucs {

extern char *database_names;
extern int maintenance_naptime_s;
extern char *maintenance_window;
extern char *maintenance_role;
extern bool enable_maintenance_worker;
extern int dead_tuple_threshold;
extern double dead_tuple_pct;
extern int lock_timeout_ms;
extern int max_lock_retries;
extern int maintenance_time_budget_s;
extern int max_maintenance_workers;  // scheduler: databases served at the same time
extern int rule_timeout_ms;  // validate_data_integrity: default timeout of one rule, 0 = none
extern int batch_pause_ms;   // batched copies and backfills: pause between batches
extern int batch_max_replay_lag_ms;  // ... and the standby replay lag they wait for, 0 = off

void define_all();

}  // namespace virtuoso::gucs
