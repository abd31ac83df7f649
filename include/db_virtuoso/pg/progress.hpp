// Progress of long jobs in shared memory, read by view virtuoso.progress from any session.
//
// A job holds a Progress for as long as it runs: the constructor takes a slot, the
// destructor frees it (so does backend exit, and a slot this backend left behind is taken
// back at its next job).  Updates are a few stores under a lock: call them once per batch,
// never a table write.  NOTICE lines go to the client at most every notice interval.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace virtuoso::pg {

class Progress {
  public:
    // total < 0: unknown.  done_before: work an earlier run of the same job already did
    // (a resumed job), counted in done but not in the rate.
    Progress(const std::string &job, const std::string &phase, int64_t total = -1,
             int64_t done_before = 0);
    ~Progress();
    Progress(const Progress &) = delete;
    Progress &operator=(const Progress &) = delete;

    void phase(const std::string &phase);
    void total(int64_t total);
    void done(int64_t done);
    void advance(int64_t by) { done(done_ + by); }
    int64_t done() const { return done_; }
    // A pause and its reason ("replay lag 12 s > 5 s"), shown in the view until resume().
    void pause(const std::string &reason);
    void resume();
    // No NOTICE lines from this one (a part of a job whose caller reports the whole).
    void silence() { quiet_ = true; }
    // Whether a slot was free (the view then shows the job).
    bool shown() const { return slot_ >= 0; }

  private:
    void maybe_notice();
    int slot_ = -1;
    std::string job_;
    std::string phase_;
    int64_t done_ = 0, total_ = -1;
    bool quiet_ = false;
    std::chrono::steady_clock::time_point last_notice_;
};

// Registers the shared-memory piece; from _PG_init.
void register_progress_memory();

}  // namespace virtuoso::pg
