// Progress slots in shared memory and the set-returning function behind virtuoso.progress.
#include "db_virtuoso/pg/progress.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "db_virtuoso/pg/guard.hpp"
#include "db_virtuoso/pg/shmem.hpp"

extern "C" {
#include "catalog/pg_authid.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

namespace virtuoso::pg {
namespace {

constexpr int kTextLen = 128;

struct Slot {
    int pid;  // 0: free
    Oid role;
    Oid database;
    TimestampTz started_at;
    TimestampTz updated_at;
    int64 done;
    int64 done_before;  // done by earlier runs of a resumed job: not in the rate
    int64 total;        // -1: unknown
    char job[kTextLen];
    char phase[kTextLen];
    char detail[kTextLen];  // reason of a pause
};

struct Shared {
    LWLock *lock;
    int nslots;
    Slot slots[FLEXIBLE_ARRAY_MEMBER];
};

Shared *shared = nullptr;
std::set<int> *live_slots = nullptr;  // slots held by a Progress of this backend
bool exit_callback_registered = false;

int slot_count() {
    return MaxBackends + 16;
}

Size shared_size() {
    return add_size(offsetof(Shared, slots), mul_size(slot_count(), sizeof(Slot)));
}

void attach(void *memory, bool found, LWLock *lock) {
    shared = static_cast<Shared *>(memory);
    if (found) return;
    std::memset(memory, 0, shared_size());
    shared->lock = lock;
    shared->nslots = slot_count();
}

void copy_text(char *to, const std::string &from) {
    strlcpy(to, from.c_str(), kTextLen);
}

// Frees every slot of this backend not held by a live Progress (all of them at exit): a job
// that ended by a longjmp past its destructor leaves no row behind.
void free_stale_slots(bool all) {
    if (shared == nullptr) return;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    for (int i = 0; i < shared->nslots; ++i)
        if (shared->slots[i].pid == MyProcPid &&
            (all || live_slots == nullptr || live_slots->count(i) == 0))
            shared->slots[i].pid = 0;
    LWLockRelease(shared->lock);
}

void on_exit(int, Datum) {
    free_stale_slots(true);
}

// Longest pause between NOTICE lines of one job.
constexpr auto kNoticeInterval = std::chrono::seconds(10);

}  // namespace

void register_progress_memory() {
    shmem::register_piece({"db_virtuoso progress", shared_size, attach});
}

Progress::Progress(const std::string &job, const std::string &phase, int64_t total,
                   int64_t done_before)
    : job_(job),
      phase_(phase),
      done_(done_before),
      total_(total),
      last_notice_(std::chrono::steady_clock::now()) {
    if (shared == nullptr) return;  // not preloaded: the job runs, unseen
    if (live_slots == nullptr) live_slots = new std::set<int>();
    pg_call([] {
        if (!exit_callback_registered) {
            before_shmem_exit(on_exit, 0);
            exit_callback_registered = true;
        }
    });
    free_stale_slots(false);
    TimestampTz now = GetCurrentTimestamp();
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    for (int i = 0; i < shared->nslots; ++i) {
        Slot &s = shared->slots[i];
        if (s.pid != 0) continue;
        s.pid = MyProcPid;
        s.role = GetUserId();
        s.database = MyDatabaseId;
        s.started_at = s.updated_at = now;
        s.done = s.done_before = done_before;
        s.total = total;
        copy_text(s.job, job);
        copy_text(s.phase, phase);
        s.detail[0] = '\0';
        slot_ = i;
        break;
    }
    LWLockRelease(shared->lock);
    if (slot_ >= 0) live_slots->insert(slot_);
}

Progress::~Progress() {
    if (slot_ < 0) return;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    if (shared->slots[slot_].pid == MyProcPid) shared->slots[slot_].pid = 0;
    LWLockRelease(shared->lock);
    live_slots->erase(slot_);
}

namespace {
template <typename F>
void update_slot(int slot, F &&f) {
    if (slot < 0) return;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    Slot &s = shared->slots[slot];
    if (s.pid == MyProcPid) {
        f(s);
        s.updated_at = GetCurrentTimestamp();
    }
    LWLockRelease(shared->lock);
}
}  // namespace

void Progress::phase(const std::string &phase) {
    phase_ = phase;
    update_slot(slot_, [&phase](Slot &s) { copy_text(s.phase, phase); });
}

void Progress::total(int64_t total) {
    total_ = total;
    update_slot(slot_, [total](Slot &s) { s.total = total; });
}

void Progress::done(int64_t done) {
    done_ = done;
    update_slot(slot_, [done](Slot &s) { s.done = done; });
    maybe_notice();
}

void Progress::pause(const std::string &reason) {
    update_slot(slot_, [&reason](Slot &s) { copy_text(s.detail, reason); });
}

void Progress::resume() {
    update_slot(slot_, [](Slot &s) { s.detail[0] = '\0'; });
}

void Progress::maybe_notice() {
    if (quiet_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_notice_ < kNoticeInterval) return;
    last_notice_ = now;
    std::string of = total_ >= 0 ? fmt::format(" of {}", total_) : "";
    report(NOTICE, fmt::format("{}: {}, {}{} done", job_, phase_, done_, of));
}

}  // namespace virtuoso::pg

using namespace virtuoso;

// virtuoso.progress_jobs(): one row per running job this role may see (its own role's, or
// every one for members of pg_read_all_stats).
VIRTUOSO_FUNCTION(virtuoso_progress_jobs) {
    pg::pg_call([fcinfo] {
        InitMaterializedSRF(fcinfo, 0);
        auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
        if (pg::shared == nullptr) return;
        int n = pg::shared->nslots;
        auto *copy = static_cast<pg::Slot *>(palloc(sizeof(pg::Slot) * n));
        LWLockAcquire(pg::shared->lock, LW_SHARED);
        std::memcpy(copy, pg::shared->slots, sizeof(pg::Slot) * n);
        LWLockRelease(pg::shared->lock);
        bool all = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
        TimestampTz now = GetCurrentTimestamp();
        for (int i = 0; i < n; ++i) {
            pg::Slot &s = copy[i];
            if (s.pid == 0 || s.database != MyDatabaseId) continue;
            if (!all && !has_privs_of_role(GetUserId(), s.role)) continue;
            Datum values[13];
            bool nulls[13] = {};
            values[0] = CStringGetTextDatum(s.job);
            values[1] = CStringGetTextDatum(s.phase);
            values[2] = Int64GetDatum(s.done);
            nulls[3] = s.total < 0;
            values[3] = Int64GetDatum(s.total);
            nulls[4] = s.total <= 0;
            double pct = s.total > 0 ? std::min(100.0, 100.0 * s.done / s.total) : 0;
            values[4] = Float8GetDatum(std::round(pct * 10) / 10);
            long secs;
            int usecs;
            TimestampDifference(s.started_at, now, &secs, &usecs);
            double elapsed = secs + usecs / 1e6;
            double rate = elapsed > 0 ? (s.done - s.done_before) / elapsed : 0;
            values[5] = Float8GetDatum(std::round(rate));
            nulls[6] = !(s.total >= 0 && rate > 0);
            if (!nulls[6]) {
                double left = std::max<double>(0, s.total - s.done) / rate;
                values[6] = IntervalPGetDatum(DatumGetIntervalP(
                    DirectFunctionCall2(interval_mul,
                                        IntervalPGetDatum(DatumGetIntervalP(DirectFunctionCall3(
                                            interval_in, CStringGetDatum("1 second"),
                                            ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)))),
                                        Float8GetDatum(std::round(left)))));
            }
            values[7] = Int32GetDatum(s.pid);
            values[8] = ObjectIdGetDatum(s.role);
            values[9] = TimestampTzGetDatum(s.started_at);
            values[10] = TimestampTzGetDatum(s.updated_at);
            nulls[11] = s.detail[0] == '\0';
            values[11] = CStringGetTextDatum(s.detail);
            values[12] = Int64GetDatum(s.done_before);
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
        }
    });
    return static_cast<Datum>(0);
}
