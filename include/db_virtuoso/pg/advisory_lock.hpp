// Advisory locks that keep one session at a time on a long job (a column change, a batched
// copy) across the job's own commits: another session asking for the same job is told at
// once (55006 from the caller) instead of racing it.
#pragma once

#include <cstdint>

namespace virtuoso::pg {

// Tries a session-level advisory lock (space, key) of the current database; held() says
// whether it was granted.  Released when the object goes (or at session end at the latest).
class SessionAdvisoryLock {
  public:
    SessionAdvisoryLock(int32_t space, int32_t key);
    ~SessionAdvisoryLock();
    SessionAdvisoryLock(const SessionAdvisoryLock &) = delete;
    SessionAdvisoryLock &operator=(const SessionAdvisoryLock &) = delete;
    bool held() const { return held_; }
    int32_t key() const { return key_; }

  private:
    int32_t space_, key_;
    bool held_ = false;
};

// Tries the transaction-level advisory lock (space, key); whether it was granted.
bool try_transaction_advisory_lock(int32_t space, int32_t key);

}  // namespace virtuoso::pg
