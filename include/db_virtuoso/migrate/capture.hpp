// Which objects a running migration touches, as the server reports them: an event trigger
// for DDL (created, altered, dropped objects) and an ExecutorStart hook for the tables that
// INSERT/UPDATE/DELETE write.  Each object is a JSON object text:
//   {"command":"ALTER TABLE","object_type":"table","schema":"public",
//    "identity":"public.orders","classid":1259,"objid":16384}
#pragma once

#include <string>
#include <vector>

namespace virtuoso::migrate {

// Installs the executor hook and the internal setting that switches capturing on in
// runner workers.  Called from _PG_init.
void install_capture();

// Captures while alive, in this backend.  Scopes nest (a migration whose SQL runs another
// migration): the innermost one records, and hands what it recorded to the one around it
// when it ends.
class CaptureScope {
  public:
    CaptureScope();
    ~CaptureScope();
    CaptureScope(const CaptureScope &) = delete;
    CaptureScope &operator=(const CaptureScope &) = delete;
    // Objects captured so far, in order, without repeats.
    std::vector<std::string> objects() const;
    void clear();
    // Adds objects reported by a runner worker.
    void add(const std::vector<std::string> &objects);
    // Pauses capturing while the extension runs its own SQL.
    void pause(bool paused);
    bool recording() const;
    // A table INSERT/UPDATE/DELETE writes (from the executor hook; never throws into it
    // except on out of memory, which the hook catches).
    void add_written_table(unsigned int relid);

  private:
    std::vector<std::string> objects_;
    std::vector<unsigned int> written_tables_;  // Oids, from the executor hook
    bool paused_ = false;
    CaptureScope *outer_;
};

// Sets the internal setting that makes runner workers report what they touch; the runner
// copies the caller's settings.  Use around pg::run_in_worker, with a pg::GucScope.
const char *worker_capture_setting();

}  // namespace virtuoso::migrate
