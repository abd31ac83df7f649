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
extern int plan_regression_statements;  // migration gate: top pgss statements compared

// Alerts and retention (src/alerts)
extern char *alert_channel;          // NOTIFY channel of alerts
extern int health_check_interval_s;  // scheduler's health round, 0 = off
extern int alert_lock_wait_ms;       // a migration's lock waits past this alert, 0 = off
extern int alert_stalled_after_s;    // a RUNNING job older than this alerts, 0 = off
extern char *log_retention;          // interval text; 0 = keep

extern int maintenance_min_interval_s;  // per table, between two actions of one kind
extern int max_runner_workers;          // runner workers at once, cluster-wide
extern int runner_queue_timeout_ms;     // how long a runner call waits in line for a worker
extern int runner_idle_timeout_ms;      // how long a finished runner worker waits for another job

extern int batch_pause_ms;           // batched copies and backfills: pause between batches
extern int batch_max_replay_lag_ms;  // ... and the standby replay lag they wait for, 0 = off
extern double batch_max_slowdown;    // ... and the slowdown of others' statements on the table

void define_all();

}  // namespace virtuoso::gucs
