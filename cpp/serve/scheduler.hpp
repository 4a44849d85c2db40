// The per-model scheduler: one queue and one batching policy, shared by every frontend.
//
// Requests are run by the threads that submit them, not handed to a worker: a submitting thread
// that finds an idle instance (one device's nn_model) takes it, forms a batch from the head of
// the queue (its own request or others'), runs it and hands each request its rows; the others
// wait. A request that arrives at an idle model therefore runs on its own thread with no
// cross-thread wake-up; only requests that are batched with another thread's wait for it.
// Each thread converts its own request's values to the kernel's containers before it queues and
// back after, so the devices run containers only and concurrent requests convert in parallel.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fpyga/nn_model.hpp"
#include "metrics.hpp"
#include "model_config.hpp"
#include "request_error.hpp"

namespace fpyga::serve {

struct scheduler_options {
  /// Overrides the models' max_queue_size when nonzero.
  std::size_t max_queue_size = 0;
  /// Where the counters go (may be null).
  metrics* counters = nullptr;
};

using clock = std::chrono::steady_clock;

class scheduler {
 public:
  /// `instances`: one nn_model per device, all of the same network. `version` names the
  /// model's version in the metrics.
  scheduler(model_config cfg, std::vector<nn_model> instances, const std::string& version,
            scheduler_options opts = {});
  ~scheduler();
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  /// Runs `rows` samples: `x` holds rows * n_inputs() floats, `y` receives rows * n_outputs().
  /// Blocks until they are done.
  /// @throws request_error: resource_exhausted when the queue is full, deadline_exceeded when
  ///         `deadline` passes before the request starts (it is then dropped, never run),
  ///         unavailable once the scheduler is closed, internal when the batch's run failed,
  ///         invalid_argument for rows over max_batch_size.
  void infer(const float* x, std::size_t rows, float* y,
             clock::time_point deadline = clock::time_point::max());

  /// Refuses new requests (unavailable); accepted ones still run.
  void close();
  /// close(), then waits until every accepted request is done.
  void drain();

  const model_config& config() const { return cfg_; }
  std::size_t n_inputs() const { return n_in_; }
  std::size_t n_outputs() const { return n_out_; }
  std::size_t instances() const;
  /// Batches run so far and the samples they held (for tests and statistics).
  std::uint64_t batches_run() const;
  /// The model's counters (null when the scheduler was made without any).
  const model_metrics* statistics() const { return counters_; }

 private:
  struct request;
  struct instance;
  /// A request's values in the kernel's containers, converted by its own thread.
  struct staging {
    std::vector<std::byte> in, out;
  };
  struct staging_return {
    scheduler* owner;
    void operator()(staging* s) const;
  };
  std::unique_ptr<staging, staging_return> take_staging();
  /// Takes requests from the head of the queue for one batch (mu_ held).
  std::vector<request*> take_batch(std::unique_lock<std::mutex>& lock);
  /// Drops the queued requests whose deadline is past `now`: they fail deadline_exceeded and
  /// never reach a device (mu_ held).
  void drop_expired(clock::time_point now);
  /// An instance is idle: wakes the thread of the first queued request that is waiting, which
  /// takes it (mu_ held). One wake-up per freed instance, not one per waiting thread.
  void wake_next();
  void count_done(std::size_t n);
  void run_batch(instance& inst, std::size_t idx, std::vector<request*>& batch);

  model_config cfg_;
  std::size_t n_in_ = 0, n_out_ = 0;
  std::size_t row_in_ = 0, row_out_ = 0;  ///< bytes of one sample in the kernel's containers
  std::size_t max_queue_ = 0;
  std::size_t max_preferred_ = 0;
  std::vector<instance> instances_;
  model_metrics* counters_ = nullptr;
  std::vector<std::atomic<std::uint64_t>*> busy_ns_;

  mutable std::mutex mu_;
  std::condition_variable delay_cv_;    ///< batches waiting out max_queue_delay wait here
  std::condition_variable drained_cv_;  ///< drain() waits here for active_ == 0
  std::deque<request*> queue_;
  std::vector<std::size_t> idle_;  ///< indices of idle instances
  std::size_t queued_rows_ = 0;
  std::size_t active_ = 0;         ///< accepted requests not yet done
  std::size_t delay_waiters_ = 0;  ///< batches waiting out max_queue_delay
  bool closed_ = false;
  std::uint64_t batches_ = 0;

  std::mutex staging_mu_;  ///< guards staging_pool_ only
  std::vector<std::unique_ptr<staging>> staging_pool_;
};

}  // namespace fpyga::serve
