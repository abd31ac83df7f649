// The batch loop shared by batched copies and backfills.
#include "db_virtuoso/online/batch.hpp"
#include "db_virtuoso/online/slowdown.hpp"

#include <algorithm>
#include <chrono>
#include <deque>

#include "db_virtuoso/migrate/executor.hpp"
#include "db_virtuoso/migrate/log.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "access/xlog.h"
#include "utils/builtins.h"
}

namespace virtuoso::online {
namespace {

// WAL position replayed by the slowest standby, or nullopt without standbys.  Read as the
// extension's owner: pg_stat_replication hides its positions from other roles, and the
// number alone tells the caller nothing about other roles' data.
std::optional<uint64_t> slowest_replay_lsn() {
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    auto lsn = spi.scalar(
        "SELECT min(pg_wal_lsn_diff(COALESCE(replay_lsn, '0/0'::pg_lsn), '0/0'::pg_lsn))"
        "::bigint::text FROM pg_stat_replication");
    if (!lsn) return std::nullopt;
    return std::stoull(*lsn);
}

using Clock = std::chrono::steady_clock;

// When each committed batch's WAL ended: a standby that has not replayed the WAL of a batch
// committed t ms ago lags t ms behind (what the walsender's lag tracker measures, but that
// one stops moving while replay is paused).
struct WalHistory {
    std::deque<std::pair<Clock::time_point, uint64_t>> ends;

    void committed() {
        uint64_t lsn = pg::pg_call([] { return static_cast<uint64_t>(GetXLogInsertRecPtr()); });
        ends.emplace_back(Clock::now(), lsn);
        if (ends.size() > 100000) ends.pop_front();
    }
    long lag_ms(uint64_t replayed) {
        while (!ends.empty() && ends.front().second <= replayed) ends.pop_front();
        if (ends.empty()) return 0;
        return static_cast<long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - ends.front().first)
                .count());
    }
};

void wait_for_standbys(const BatchThrottle &throttle, WalHistory &wal, pg::Progress &progress) {
    if (throttle.max_replay_lag_ms <= 0) return;
    bool paused = false;
    for (;;) {
        std::optional<uint64_t> replayed = slowest_replay_lsn();
        long lag = replayed ? wal.lag_ms(*replayed) : 0;
        if (lag <= throttle.max_replay_lag_ms) break;
        progress.pause(
            fmt::format("standby replay lag {} ms > {} ms", lag, throttle.max_replay_lag_ms));
        paused = true;
        pg::interruptible_sleep(200);
    }
    if (paused) progress.resume();
}

}  // namespace

BatchThrottle throttle_from_settings() {
    BatchThrottle t;
    t.lock_timeout_ms = gucs::lock_timeout_ms;
    t.max_lock_retries = gucs::max_lock_retries;
    t.pause_ms = gucs::batch_pause_ms;
    t.max_replay_lag_ms = gucs::batch_max_replay_lag_ms;
    return t;
}

int64_t run_batches(const Batch &batch, const std::function<void()> &commit,
                    const BatchThrottle &throttle, pg::Progress &progress,
                    QuerySlowdown *slowdown) {
    int64_t rows = 0;
    WalHistory wal;
    for (;;) {
        wait_for_standbys(throttle, wal, progress);
        if (slowdown) slowdown->wait(progress);
        std::optional<int64_t> handled;
        // A batch that timed out was rolled back: nothing of it stays.
        with_lock_retries(
            throttle.lock_timeout_ms, throttle.max_lock_retries, [&] { handled = batch(); },
            [&](int attempt, int attempts, long sleep) {
                progress.pause(
                    fmt::format("lock wait: batch timed out after {} ms (attempt {} "
                                "of {}), backing off {} ms",
                                throttle.lock_timeout_ms, attempt, attempts, sleep));
            });
        progress.resume();
        if (!handled) return rows;
        // A batch's rows and its position commit in one transaction, and WAL is replayed in
        // order: a crash may lose the last batches' commits, never one without the other,
        // and the rerun redoes them.  So a batch need not wait for its WAL flush; the job's
        // last commit (synchronous) flushes them all before the caller hears of success.
        pg::pg_call([] {
            (void)set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
                                    GUC_ACTION_LOCAL, true, 0, false);
        });
        commit();
        if (throttle.max_replay_lag_ms > 0) wal.committed();
        rows += *handled;
        progress.advance(*handled);
        if (throttle.pause_ms > 0) {
            progress.pause(fmt::format("pause between batches ({} ms)", throttle.pause_ms));
            pg::interruptible_sleep(throttle.pause_ms);
            progress.resume();
        }
    }
}

void with_lock_retries(int lock_timeout_ms, int max_retries, const std::function<void()> &body,
                       const LockRetryHook &after_timeout) {
    for (int attempt = 0;; ++attempt) {
        try {
            pg::SubTransaction sub;
            {
                pg::GucScope guc;
                guc.set("lock_timeout", std::to_string(lock_timeout_ms));
                body();
            }
            sub.commit();
            return;
        } catch (const pg::PgError &e) {
            if (e.sqlstate() != ERRCODE_LOCK_NOT_AVAILABLE || attempt >= max_retries) throw;
        }
        long sleep = migrate::lock_retry_backoff_ms(attempt + 1);
        after_timeout(attempt + 1, max_retries + 1, sleep);
        pg::interruptible_sleep(sleep);
    }
}

void check_batch_size(int batch_size) {
    if (batch_size < 1 || batch_size > 10000000)
        throw pg::UserError(
            ERRCODE_INVALID_PARAMETER_VALUE,
            fmt::format("batch_size must be between 1 and 10000000, got {}", batch_size));
}

std::string block_range_condition() {
    return "ctid OPERATOR(pg_catalog.>=) pg_catalog.tid(pg_catalog.format('(%s,0)', $1)) AND "
           "ctid OPERATOR(pg_catalog.<) pg_catalog.tid(pg_catalog.format('(%s,0)', $2))";
}

int64_t relation_blocks(uint32_t table) {
    return pg::pg_call([table] {
        return static_cast<int64_t>(DatumGetInt64(DirectFunctionCall2(
                   pg_relation_size, ObjectIdGetDatum(table), CStringGetTextDatum("main")))) /
               BLCKSZ;
    });
}

int64_t blocks_per_batch(uint32_t table, int batch_size, int64_t *rows) {
    pg::InternalSql spi;
    auto r = spi.execute(
        "SELECT greatest(reltuples, 0)::bigint, greatest(relpages, 0) FROM pg_class "
        "WHERE oid = $1::oid",
        {std::to_string(table)});
    int64_t tuples = std::stoll(*r.rows[0][0]), pages = std::stoll(*r.rows[0][1]);
    *rows = tuples;
    int64_t per_block = pages > 0 && tuples > 0 ? std::max<int64_t>(1, tuples / pages) : 50;
    return std::max<int64_t>(1, batch_size / per_block);
}

}  // namespace virtuoso::online
