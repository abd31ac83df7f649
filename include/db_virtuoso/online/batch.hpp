// The batch loop of online data changes (batched copies, backfills): one batch per
// transaction, committed before the next; lock waits bounded and backed off; pauses between
// batches; every pause and its reason shown in virtuoso.progress.  The caller supplies the
// batch (which also records how far the job got, in the same transaction) and the commit.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "db_virtuoso/pg/progress.hpp"

namespace virtuoso::online {

struct BatchThrottle {
    int lock_timeout_ms = 1000;  // each batch's lock waits (virtuoso.lock_timeout)
    int max_lock_retries = 10;   // a batch that timed out this often fails (55P03)
    int pause_ms = 0;            // between two batches (virtuoso.batch_pause)
    int max_replay_lag_ms = 0;   // wait while a standby replays further behind; 0 = off
};

// The current settings (GUCs virtuoso.lock_timeout, max_lock_retries, batch_pause,
// batch_max_replay_lag).
BatchThrottle throttle_from_settings();

// One batch: does its work and returns how many rows it handled, or nullopt when there was
// nothing left (the loop ends).  Runs in a subtransaction with the batch's lock_timeout: a
// lock timeout rolls it back and it is called again after a back-off.
using Batch = std::function<std::optional<int64_t>()>;

// Runs batches until one returns nullopt, calling commit() after each (with synchronous_commit
// off for that transaction: the caller's final commit must be an ordinary one, which flushes
// them all).  The batch must commit its rows together with the job's position, or be
// idempotent (a backfill of what is still NULL), so that a batch lost to a crash is redone
// by the rerun.  Returns the rows.
// slowdown: when given, checked before each batch (it pauses while others' statements on
// the job's table are slow).
class QuerySlowdown;
int64_t run_batches(const Batch &batch, const std::function<void()> &commit,
                    const BatchThrottle &throttle, pg::Progress &progress,
                    QuerySlowdown *slowdown = nullptr);

// Runs body in a subtransaction with lock_timeout set to lock_timeout_ms.  A lock timeout
// (55P03) rolls it back, releasing every lock it took; then after_timeout(attempt,
// attempts, backoff_ms) runs (a procedure commits there, so that no snapshot is held while
// sleeping; it says why it waits), the back-off of the migration executor is slept, and body
// runs again, up to max_retries times.  Any other error, and the last timeout, is raised.
using LockRetryHook = std::function<void(int attempt, int attempts, long backoff_ms)>;
void with_lock_retries(int lock_timeout_ms, int max_retries, const std::function<void()> &body,
                       const LockRetryHook &after_timeout);

// The batch_size argument of the batched procedures: 1 to 10,000,000, else 22023.
void check_batch_size(int batch_size);

// Batches of block ranges (backfills, parity checks): the condition "ctid in blocks $1 to
// $2 - 1", $1 and $2 block numbers passed as text; the table's size in blocks now; and how
// many blocks hold about batch_size rows by the table's statistics (rows: its estimated row
// count).
std::string block_range_condition();
int64_t relation_blocks(uint32_t table);
int64_t blocks_per_batch(uint32_t table, int batch_size, int64_t *rows);

}  // namespace virtuoso::online
