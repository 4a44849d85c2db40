#include "scheduler.hpp"

#include <algorithm>
#include <cstring>
#include <exception>

namespace fpyga::serve {

struct scheduler::request {
  const std::byte* x = nullptr;  ///< rows of the kernel's input containers
  std::size_t rows = 0;
  std::byte* y = nullptr;        ///< receives rows of its output containers
  clock::time_point enqueued;
  clock::time_point deadline;
  bool taken = false;    ///< in a batch some thread is running
  bool leading = false;  ///< its thread is forming or running a batch (not waiting)
  bool done = false;
  std::condition_variable cv;  ///< its thread waits here
  std::exception_ptr error;
};

struct scheduler::instance {
  nn_model model;
  std::string device;
  std::vector<std::byte> in, out;  ///< staging for batches of several requests, reused
};

namespace {

std::uint64_t ns_between(clock::time_point a, clock::time_point b) {
  return b > a ? static_cast<std::uint64_t>(
                     std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count())
               : 0;
}

}  // namespace

scheduler::scheduler(model_config cfg, std::vector<nn_model> instances, const std::string& version,
                     scheduler_options opts)
    : cfg_(std::move(cfg)) {
  if (instances.empty())
    throw request_error(status_code::unavailable, "model '" + cfg_.name + "' has no device");
  n_in_ = instances.front().n_inputs();
  n_out_ = instances.front().n_outputs();
  row_in_ = n_in_ * instances.front().raw_input_bytes();
  row_out_ = n_out_ * instances.front().raw_output_bytes();
  max_queue_ = opts.max_queue_size ? opts.max_queue_size : cfg_.max_queue_size;
  if (max_queue_ == 0) max_queue_ = 1;
  for (auto p : cfg_.preferred_batch_sizes) max_preferred_ = std::max(max_preferred_, p);
  for (auto& m : instances) {
    instance inst;
    inst.device = m.devices().empty() ? std::string("?") : m.devices().front().spec();
    inst.model = std::move(m);
    instances_.push_back(std::move(inst));
  }
  if (opts.counters) {
    counters_ = &opts.counters->model(cfg_.name, version);
    for (auto& inst : instances_) busy_ns_.push_back(&opts.counters->device_busy_ns(inst.device));
  }
  // Taken from the back: the first device first.
  for (std::size_t i = instances_.size(); i-- > 0;) idle_.push_back(i);
}

scheduler::~scheduler() {
  drain();
}

std::size_t scheduler::instances() const {
  return instances_.size();
}

std::uint64_t scheduler::batches_run() const {
  std::lock_guard lk(mu_);
  return batches_;
}

void scheduler::close() {
  std::lock_guard lk(mu_);
  closed_ = true;
  delay_cv_.notify_all();
}

void scheduler::drain() {
  std::unique_lock lk(mu_);
  closed_ = true;
  delay_cv_.notify_all();
  drained_cv_.wait(lk, [&] { return active_ == 0; });
}

void scheduler::wake_next() {
  if (idle_.empty()) return;
  for (request* q : queue_)
    if (!q->leading) {
      q->cv.notify_one();
      return;
    }
}

void scheduler::count_done(std::size_t n) {
  active_ -= n;
  if (active_ == 0) drained_cv_.notify_all();
}

void scheduler::infer(const float* x, std::size_t rows, float* y, clock::time_point deadline) {
  const auto arrived = clock::now();
  const auto count = [&](bool ok) {
    if (counters_) counters_->observe_request(ok, ns_between(arrived, clock::now()));
  };
  const auto fail = [&](status_code code, const std::string& what) {
    count(false);
    throw request_error(code, what);
  };
  if (cfg_.max_batch_size > 0 && rows > cfg_.max_batch_size)
    fail(status_code::invalid_argument,
         "model '" + cfg_.name + "': a batch of " + std::to_string(rows) +
             " samples is over its max_batch_size " + std::to_string(cfg_.max_batch_size));
  if (rows == 0) {
    count(true);
    return;
  }
  // The conversions to and from the kernel's containers run here, on the request's own thread
  // and outside the device: concurrent requests convert in parallel while a device runs another
  // batch, instead of in turn inside it.
  const auto lease = take_staging();
  staging& stage = *lease;
  stage.in.resize(rows * row_in_);
  stage.out.resize(rows * row_out_);
  const nn_model& conv = instances_.front().model;
  conv.inputs_to_raw(x, rows, stage.in.data());
  request r;
  r.x = stage.in.data();
  r.rows = rows;
  r.y = stage.out.data();
  r.enqueued = clock::now();
  r.deadline = deadline;

  std::unique_lock lk(mu_);
  if (closed_)
    fail(status_code::unavailable, "model '" + cfg_.name +
                                       "' is not accepting requests (unloaded, or the server is "
                                       "shutting down)");
  if (queue_.size() >= max_queue_)
    fail(status_code::resource_exhausted, "model '" + cfg_.name + "': the queue is full (" +
                                              std::to_string(queue_.size()) +
                                              " requests waiting); retry later");
  if (deadline <= r.enqueued)
    fail(status_code::deadline_exceeded,
         "model '" + cfg_.name + "': the request's deadline passed before it was queued");
  queue_.push_back(&r);
  queued_rows_ += rows;
  ++active_;
  // A batch forming under max_queue_delay waits for requests like this one.
  if (delay_waiters_ > 0) delay_cv_.notify_all();

  while (!r.done) {
    if (!r.taken && !idle_.empty()) {
      const std::size_t idx = idle_.back();
      idle_.pop_back();
      r.leading = true;
      auto batch = take_batch(lk);
      if (!batch.empty()) {
        lk.unlock();
        run_batch(instances_[idx], idx, batch);
        lk.lock();
        for (auto* b : batch) {
          b->done = true;
          if (b != &r) b->cv.notify_one();
        }
        ++batches_;
        count_done(batch.size());
      }
      r.leading = false;
      idle_.push_back(idx);
      wake_next();
      continue;
    }
    if (r.taken || deadline == clock::time_point::max()) {
      r.cv.wait(lk);
    } else if (r.cv.wait_until(lk, deadline) == std::cv_status::timeout && !r.taken && !r.done) {
      // Still queued: drop it, it never reached a device.
      queue_.erase(std::find(queue_.begin(), queue_.end(), &r));
      queued_rows_ -= rows;
      count_done(1);
      fail(status_code::deadline_exceeded,
           "model '" + cfg_.name + "': the request's deadline passed while it was queued");
    }
  }
  lk.unlock();
  if (r.error) {
    count(false);
    std::rethrow_exception(r.error);
  }
  conv.outputs_from_raw(stage.out.data(), rows, y);
  count(true);
}

// A staging pair from the pool, or a new one; handed back (trimmed) when the lease ends. A pool
// rather than one per thread: gRPC's sync server ends and starts threads as the number of calls
// in flight changes, and a new thread would start with no memory for its request.
std::unique_ptr<scheduler::staging, scheduler::staging_return> scheduler::take_staging() {
  std::unique_ptr<staging> s;
  {
    std::lock_guard lk(staging_mu_);
    if (!staging_pool_.empty()) {
      s = std::move(staging_pool_.back());
      staging_pool_.pop_back();
    }
  }
  if (!s) s = std::make_unique<staging>();
  return {s.release(), staging_return{this}};
}

void scheduler::staging_return::operator()(staging* s) const {
  // Memory a very large request took goes back to the host.
  constexpr std::size_t keep = std::size_t(16) << 20;
  if (s->in.capacity() > keep) std::vector<std::byte>().swap(s->in);
  if (s->out.capacity() > keep) std::vector<std::byte>().swap(s->out);
  std::lock_guard lk(owner->staging_mu_);
  owner->staging_pool_.emplace_back(s);
}

void scheduler::drop_expired(clock::time_point now) {
  for (auto it = queue_.begin(); it != queue_.end();) {
    request* r = *it;
    if (r->deadline > now) {
      ++it;
      continue;
    }
    it = queue_.erase(it);
    queued_rows_ -= r->rows;
    r->error = std::make_exception_ptr(request_error(
        status_code::deadline_exceeded,
        "model '" + cfg_.name + "': the request's deadline passed while it was queued"));
    r->done = true;
    r->cv.notify_one();
    count_done(1);
  }
}

std::vector<scheduler::request*> scheduler::take_batch(std::unique_lock<std::mutex>& lk) {
  std::vector<request*> batch;
  const bool batching = cfg_.dynamic_batching && cfg_.max_batch_size > 0;
  const std::size_t limit = batching ? cfg_.max_batch_size : 0;
  drop_expired(clock::now());
  if (batching && cfg_.max_queue_delay_us > 0 && !queue_.empty()) {
    // Wait for more requests until the batch reaches a preferred size (or the limit) or the
    // oldest request has waited max_queue_delay. A queued request whose deadline comes first
    // ends the wait too: it is dropped then (never run), and the others wait on.
    const std::size_t target = max_preferred_ ? max_preferred_ : limit;
    const auto until =
        queue_.front()->enqueued + std::chrono::microseconds(cfg_.max_queue_delay_us);
    while (!queue_.empty() && queued_rows_ < target && !closed_ && clock::now() < until) {
      auto wake = until;
      for (const request* q : queue_) wake = std::min(wake, q->deadline);
      ++delay_waiters_;
      delay_cv_.wait_until(lk, wake);
      --delay_waiters_;
      drop_expired(clock::now());
    }
  }
  std::size_t rows = 0;
  while (!queue_.empty()) {
    request* r = queue_.front();
    if (!batch.empty() && (!batching || rows + r->rows > limit)) break;
    queue_.pop_front();
    queued_rows_ -= r->rows;
    r->taken = true;
    rows += r->rows;
    batch.push_back(r);
    if (!batching) break;
  }
  return batch;
}

void scheduler::run_batch(instance& inst, std::size_t idx, std::vector<request*>& batch) {
  const auto t0 = clock::now();
  std::size_t rows = 0;
  for (auto* b : batch) rows += b->rows;
  try {
    if (batch.size() == 1) {
      inst.model.predict_raw(batch[0]->x, batch[0]->rows, batch[0]->y);
    } else {
      inst.in.resize(rows * row_in_);
      inst.out.resize(rows * row_out_);
      std::size_t at = 0;
      for (auto* b : batch) {
        std::memcpy(inst.in.data() + at * row_in_, b->x, b->rows * row_in_);
        at += b->rows;
      }
      inst.model.predict_raw(inst.in.data(), rows, inst.out.data());
      at = 0;
      for (auto* b : batch) {
        std::memcpy(b->y, inst.out.data() + at * row_out_, b->rows * row_out_);
        at += b->rows;
      }
    }
  } catch (const std::exception& e) {
    // Only this batch's requests fail; the instance stays in service.
    const auto err = std::make_exception_ptr(
        request_error(status_code::internal, "model '" + cfg_.name + "': the device " +
                                                 inst.device + " failed the batch of " +
                                                 std::to_string(rows) + " samples: " + e.what()));
    for (auto* b : batch) b->error = err;
  }
  const auto t1 = clock::now();
  if (counters_) {
    for (auto* b : batch)
      counters_->queue_ns.fetch_add(ns_between(b->enqueued, t0), std::memory_order_relaxed);
    counters_->queued_requests.fetch_add(batch.size(), std::memory_order_relaxed);
    counters_->compute_ns.fetch_add(ns_between(t0, t1), std::memory_order_relaxed);
    counters_->execution_count.fetch_add(1, std::memory_order_relaxed);
    if (!batch.front()->error)
      counters_->inference_count.fetch_add(rows, std::memory_order_relaxed);
    counters_->observe_batch(rows);
    busy_ns_[idx]->fetch_add(ns_between(t0, t1), std::memory_order_relaxed);
  }
}

}  // namespace fpyga::serve
