#pragma once
/// The broker's decisions, with no socket and no clock: what happens to a call, a job, a worker and
/// a client at each event (docs/protocol.md §4, §5). Every entry point takes `now`; what the core
/// wants sent goes to its outbox. The shell (broker.cpp) decodes messages into these calls and owns
/// the sockets; unit tests drive the core with injected time and a recording outbox.
///
/// The parts it ties together: job_table (jobs, queues), dispatcher (the choice of worker),
/// worker_registry, client_registry and deadlines. Owned by the broker loop: one thread.

#include "client_registry.hpp"
#include "deadlines.hpp"
#include "dispatcher.hpp"
#include "job_table.hpp"
#include "outbox.hpp"
#include "records.hpp"
#include "tenant_registry.hpp"
#include "worker_registry.hpp"

#include "deferq/broker.hpp"
#include "deferq/broker_counters.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace deferq::broker_detail {

/// A call as a client asks it, in either dialect.
struct call_request {
    std::uint64_t correlation_id;
    std::string_view function;
    protocol::request_options options;
};

/// How a peer left: one that said goodbye is news, one that vanished is a warning.
enum class parting : std::uint8_t { goodbye, lost };

class broker_core {
public:
    /// `started`: when this broker instance started (workers re-register after it).
    broker_core(const broker_options& options, broker_counters& counters, outbox& out,
                time_point started);
    broker_core(const broker_core&) = delete;
    broker_core& operator=(const broker_core&) = delete;

    // ---- clients

    /// The client of that routing id, seen at `now`. A new client whose dialect heartbeats is
    /// sent a heartbeat at once (it announces the interval and the broker instance). A new client
    /// belongs to the tenant `tenant_key` (its CURVE key), or else to a tenant of its own.
    client_record& touch_client(std::string_view routing_id, const peer_dialect& dialect,
                                time_point now, std::string_view tenant_key = {});
    client_record* find_client(std::string_view routing_id) { return _clients.find(routing_id); }

    /// A new call (`payload`: its msgpack argument array, kept without a copy). The broker SHALL
    /// NOT hold two jobs for the same (client, correlation id): a repeat is counted and ignored.
    void on_request(client_record& client, const call_request& request, zmq::message_t payload,
                    time_point now);
    /// The client cancels a call: a queued job is dropped, a running one cancelled on its worker.
    void on_cancel(client_record& client, std::uint64_t correlation_id);
    /// Forgets a client and drops its pending calls (their jobs are cancelled).
    void forget_client(client_record& client, std::string_view why, parting how);

    // ---- calls from inside jobs (core/calls_from_jobs.cpp; docs/protocol.md §3b)

    /// A job's handler calls the cluster (CALL): a call whose caller is the worker, served from the
    /// tenant of the job that makes it (its parent), with a deadline no later than the parent's.
    /// Refused with cancelled when the worker does not run that job.
    void on_call(worker_record& worker, std::uint64_t parent_job_id, const call_request& request,
                 zmq::message_t payload, time_point now);
    /// The worker cancels a call one of its jobs made.
    void on_call_cancel(worker_record& worker, std::uint64_t call_id);
    /// The job's handler waits on a Deferred (WAIT): the job stays held but takes no slot, which
    /// may go to another job (its own children too). False when the worker does not hold it.
    [[nodiscard]] bool on_wait(worker_record& worker, std::uint64_t job_id, time_point now);

    // ---- workers

    worker_record* find_worker(std::string_view routing_id) { return _workers.find(routing_id); }
    /// Registers a worker (its routing id must be new), greets it and gives it work.
    worker_record& on_ready(std::string_view routing_id, const peer_dialect& dialect,
                            const worker_announcement& announcement, time_point now);

    // A worker's answers. Each returns false, and changes nothing, when the worker does not hold
    // that job (a late or forged answer: the shell counts it against the worker).
    [[nodiscard]] bool on_reply(worker_record& worker, std::uint64_t job_id,
                                std::string_view payload, zmq::message_t* frame, time_point now);
    [[nodiscard]] bool on_error(worker_record& worker, const protocol::worker_error& failure,
                                time_point now);
    [[nodiscard]] bool on_progress(worker_record& worker, const protocol::progress_update& update);
    /// The worker gives a job back unstarted: not an attempt; it goes first in its queue.
    [[nodiscard]] bool on_decline(worker_record& worker, std::uint64_t job_id, time_point now);

    /// The worker reports a job it holds from an earlier connection (HELD, docs/protocol.md §3c):
    /// adopted (its caller's resend attaches to it), taken over from the caller's queued or
    /// parked call, or, when that call runs elsewhere, cancelled on the worker.
    void on_held(worker_record& worker, const protocol::held_job& report, time_point now);

    /// The worker's prefetch changed (the shell checked its bound).
    void on_credit(worker_record& worker, std::uint32_t prefetch, time_point now);
    /// The worker takes no more jobs and finishes those it holds.
    void on_drain(worker_record& worker);
    /// Forgets a worker. The jobs it held go back to the front of their queues, or fail with
    /// worker_lost after max_attempts; abandoned ones are dropped.
    void remove_worker(worker_record& worker, std::string_view why, parting how, time_point now);

    /// The broker starts serving at `now`: a standby broker taking over (docs/protocol.md §8).
    /// Like a start, it opens the registration window (workers come and report the jobs they
    /// hold; resent calls wait for those reports before they are queued again).
    void begin_serving(time_point now) { _started = now; }

    // ---- time

    /// Adopted jobs no caller claimed yet, and answers kept for them (status, tests).
    std::size_t unclaimed() const { return _unclaimed.size(); }
    /// Resent calls waiting for the workers' reports.
    std::size_t parked() const { return _parked.size(); }

    /// The earliest armed deadline.
    std::optional<time_point> next_deadline() const { return _deadlines.next(); }
    /// Fails every call whose deadline is at or before `now` with timeout.
    void expire_deadlines(time_point now);
    /// Heartbeats to peers that are due one, expiry of silent peers, upkeep of the tables. The
    /// shell calls it every heartbeat interval / 4.
    void tick(time_point now);

    // ---- from the shell

    /// Jobs the outbox could not deliver to `worker` (gone at the socket level): they go back to
    /// the front of their queues (not an attempt) and to other workers.
    void take_back(worker_record& worker, std::span<const std::uint64_t> job_ids, time_point now);
    /// What the outbox holds for `client` changed (it reads slowly, or caught up): its tenant's
    /// jobs wait while its clients have much to read, and a client past the tenant budget is
    /// forgotten (docs/protocol.md §5, Replies waiting).
    void review_replies(client_record& client, time_point now);

    // ---- reads (status, mmi.*)

    const broker_options& options() const { return _options; }
    const job_table& jobs() const { return _jobs; }
    job_table& jobs() { return _jobs; }
    const worker_registry& workers() const { return _workers; }
    const client_registry& clients() const { return _clients; }
    const tenant_registry& tenants() const { return _tenants; }
    /// Answers held for clients that read slowly, bytes (the outbox's count).
    std::uint64_t held_bytes() const { return _out.held_bytes(); }
    /// Jobs whose deadline is armed (memory follows live calls: tests check it).
    std::size_t armed_deadlines() const { return _deadlines.size(); }
    /// True when some worker offers `function` now (mmi.service).
    bool offered(std::string_view function) const;
    /// True when a worker offers `function` now or did within function_memory.
    bool remembered(const function_record& function, time_point now) const;

private:
    // ---- adoption (core/adoption.cpp; docs/protocol.md §3c)

    /// An answer to an adopted job that came before its caller claimed it.
    struct kept_answer {
        bool failed = false;
        zmq::message_t payload;    ///< REPLY
        error_code code{};         ///< ERROR
        std::string type, message; ///< ERROR
        std::string worker;
        std::uint32_t attempts = 0;
    };
    /// A reported job whose caller has not resent its call yet.
    struct unclaimed_call {
        std::uint64_t job_id = 0; ///< 0 once answered
        time_point until{};       ///< then it is cancelled (or its answer dropped)
        std::optional<kept_answer> answer;
        std::string function;
    };
    static std::string claim_key(std::string_view caller, std::uint64_t correlation_id);
    /// How long after the broker starts serving resent calls wait for the workers' reports, and
    /// how long an adopted job waits for its caller: a heartbeat expiry (peers that lost the old
    /// broker find the new one within it).
    clock_type::duration adoption_window() const {
        return _options.heartbeat_interval * _options.liveness;
    }
    /// A resent call for an adopted job: attached to it, or answered with the answer kept for
    /// it. False when there is none.
    bool claim(client_record& client, const call_request& request, zmq::message_t& payload,
               time_point now);
    /// Gives `j` (adopted) its caller, as a call of `client` would.
    void attach(job& j, client_record& client, zmq::message_t payload, std::uint8_t priority,
                std::uint8_t max_attempts, std::optional<time_point> deadline);
    /// An adopted job's answer came before its caller: kept until it claims it. True if `j` was
    /// such a job (the worker's slot is free again).
    bool keep_unclaimed_answer(worker_record& worker, job& j, kept_answer answer, time_point now);
    /// Parks a resent call while the workers may still report it. True when parked.
    bool park(job& j, const call_request& request, time_point now);
    /// The adoption window passed: parked calls are queued, unclaimed jobs cancelled.
    void end_adoption(time_point now);
    /// A parked call leaves the parked ones (to be queued, held or forgotten).
    static void leave_parked(job& j);
    /// `j` is forgotten: its unclaimed entry goes too, unless it keeps an answer.
    void forget_unclaimed(const job& j);

    /// A worker answered a job it holds: `deliver` tells the caller, if one still waits; the
    /// worker's slot goes to the next job. False when the worker does not hold the job.
    template <typename Deliver>
    bool finish(worker_record& worker, std::uint64_t job_id, time_point now, Deliver&& deliver);
    void dispatch(function_record& function, time_point now);
    void dispatch_to(worker_record& worker, time_point now);
    /// Hands a job taken from its queue to `worker`, or fails it if its deadline passed.
    void start(worker_record& worker, job& j, time_point now);
    /// The caller no longer waits: a queued job is dropped, a running one cancelled on its
    /// worker (its record stays until the worker answers, so that its slot is accounted for).
    void abandon(job& j, error_code why);
    /// Fails a job that is not held (queued or just taken from its queue) and forgets it.
    void fail_job(job& j, error_code code, std::string_view message);
    /// Forgets a job: its deadline, its record, its use of its tenant.
    void forget(job& j);
    /// Checks a call (its caller's limits, its name, the budgets of `tenant`) and queues it: a
    /// client's call, or one made by the job `parent`.
    void accept_call(client_record& client, tenant_record& tenant, const call_request& request,
                     zmq::message_t payload, time_point now, const job* parent);
    /// The worker as a caller (made at its first CALL).
    client_record& caller_of(worker_record& worker);
    /// A job ended or its caller stopped waiting: the calls it made that still run or wait are
    /// cancelled, and the worker that made them is told (ERROR cancelled).
    void end_children(const job& parent);
    /// The worker goes: the calls its jobs made are cancelled.
    void drop_caller(worker_record& worker);
    /// A held job no longer waits (it ended): it gives back the place it did not take.
    static void stop_waiting(worker_record& worker, job& j);
    /// Pauses the tenant's jobs, or lets them go again, by what its clients have to read.
    void review_tenant(tenant_record& tenant, time_point now);
    /// Forgets a client record (its calls are dealt with), and its use of its tenant.
    void drop_client(client_record& client);
    void send_error(client_record& client, std::uint64_t correlation_id, std::string_view function,
                    error_code code, std::string_view message, std::string_view worker = {},
                    std::uint32_t attempts = 0, std::string_view type = {});
    /// Fails the queued calls of functions no worker offers (nor offered lately) once they have
    /// waited unknown_function_grace for one (docs/protocol.md §5).
    void fail_unoffered(time_point now);
    /// When a call to a function no worker offers fails: after the grace from its arrival, and
    /// not before the registration window after the broker's start has passed (strict: then).
    time_point gives_up_at(const job& j) const;
    /// How long after its start the broker waits for workers to register before it says that no
    /// worker offers a function: the grace, and at least twice a heartbeat expiry.
    clock_type::duration registration_window() const;
    /// Why a call of `bytes` of arguments from `tenant` would go past a byte budget; nothing when
    /// it fits both.
    std::optional<std::string> over_budget(const tenant_record& tenant, std::uint64_t bytes) const;
    /// A configured limit refused something: logged at most once per heartbeat interval.
    void limit_hit(const std::string& what, time_point now);
    static void note_failure(function_record& function, error_code code);

    const broker_options& _options;
    broker_counters& _counters;
    outbox& _out;
    job_table _jobs;
    dispatcher _dispatcher;
    worker_registry _workers;
    client_registry _clients;
    deadlines _deadlines;
    tenant_registry _tenants;
    time_point _started;
    time_point _last_limit_log{};
    string_map<unclaimed_call> _unclaimed;                      ///< by claim_key
    std::unordered_map<std::uint64_t, std::string> _claim_keys; ///< unclaimed job → its key
    std::vector<std::uint64_t> _parked;                         ///< resent calls (job ids)
};

} // namespace deferq::broker_detail
