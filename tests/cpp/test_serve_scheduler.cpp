// fpyga serve's per-model scheduler on the emulated device with the project's mlp xclbins:
// batched requests from many threads each get exactly their own rows (compared with a direct
// nn_model predict on another device), batching on and off, max_batch_size, a full queue, a
// deadline passing in the queue (also while a batch waits out its delay), and draining.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <random>
#include <thread>
#include <vector>

#include "fpyga/fpyga.hpp"
#include "scheduler.hpp"
#include "test_support.hpp"

namespace {

const int three_emu_devices = [] {
  ::setenv("FPYGA_EMU_DEVICES", "3", 1);
  ::unsetenv("FPYGA_DEVICE");
  return 0;
}();

using fpyga::serve::model_config;
using fpyga::serve::request_error;
using fpyga::serve::scheduler;
using fpyga::serve::status_code;
using namespace std::chrono_literals;

std::vector<float> inputs(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  std::vector<float> x(n * 27);
  for (auto& v : x) v = u(rng);
  return x;
}

status_code code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const request_error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no request_error";
  return status_code::internal;
}

class ServeScheduler : public ::testing::Test {
 protected:
  void SetUp() override {
    FPYGA_REQUIRE_FILE(mlp2, fpyga::test::built_xclbin_dir() / "mlp_2cu.xclbin");
    path = mlp2.string();
    reference = fpyga::nn_model(path, {fpyga::device::open("emu:2")});
  }
  model_config config(bool batching, std::size_t max_batch, std::uint64_t delay_us,
                      std::vector<std::size_t> preferred = {}) {
    model_config c = model_config::from_network("mlp", reference.info());
    c.dynamic_batching = batching;
    c.max_batch_size = max_batch;
    c.max_queue_delay_us = delay_us;
    c.preferred_batch_sizes = std::move(preferred);
    return c;
  }
  std::vector<fpyga::nn_model> on(std::initializer_list<const char*> specs) {
    std::vector<fpyga::nn_model> v;
    for (auto s : specs) v.emplace_back(path, std::vector<fpyga::device>{fpyga::device::open(s)});
    return v;
  }
  std::vector<float> expected(const std::vector<float>& x) {
    std::vector<float> y(x.size() / 27);
    reference.predict(x.data(), y.size(), y.data());
    return y;
  }
  std::string path;
  fpyga::nn_model reference;
};

// 16 threads x 5 requests of 1-9 samples; every request's rows are its own.
void run_many(scheduler& s, const std::vector<float>& x, const std::vector<float>& want,
              std::size_t per_request_max) {
  const std::size_t threads = 16, each = 5;
  std::vector<std::thread> pool;
  std::atomic<int> wrong{0};
  for (std::size_t t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (std::size_t i = 0; i < each; ++i) {
        const std::size_t rows = 1 + rng() % per_request_max;
        const std::size_t first = (t * 97 + i * 31) % (want.size() - rows);
        std::vector<float> y(rows, -1234.0f);
        s.infer(x.data() + first * 27, rows, y.data());
        for (std::size_t r = 0; r < rows; ++r)
          if (y[r] != want[first + r]) ++wrong;
      }
    });
  for (auto& th : pool) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(ServeScheduler, BatchedRequestsEachGetTheirOwnRows) {
  const auto x = inputs(400, 1);
  const auto want = expected(x);
  scheduler s(config(true, 64, 20'000), on({"emu:0", "emu:1"}), "1");
  EXPECT_EQ(s.instances(), 2u);
  run_many(s, x, want, 9);
  // 80 requests in far fewer batches: the batcher combined them.
  EXPECT_LT(s.batches_run(), 60u);
  EXPECT_GE(s.batches_run(), 1u);
}

TEST_F(ServeScheduler, WithoutDynamicBatchingEachRequestRunsAlone) {
  const auto x = inputs(300, 2);
  const auto want = expected(x);
  scheduler s(config(false, 16, 0), on({"emu:0"}), "1");
  run_many(s, x, want, 4);
  EXPECT_EQ(s.batches_run(), 80u);
}

TEST_F(ServeScheduler, ABatchOverMaxBatchSizeIsRefusedAndTheModelServesOn) {
  const auto x = inputs(20, 3);
  const auto want = expected(x);
  scheduler s(config(true, 8, 0), on({"emu:0"}), "1");
  std::vector<float> y(20);
  EXPECT_EQ(code_of([&] { s.infer(x.data(), 9, y.data()); }), status_code::invalid_argument);
  s.infer(x.data(), 8, y.data());
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(y[i], want[i]);
}

TEST_F(ServeScheduler, AFullQueueIsResourceExhausted) {
  const auto x = inputs(4, 4);
  const auto want = expected(x);
  auto c = config(true, 64, 400'000);  // the first request waits 0.4 s for company
  c.max_queue_size = 1;
  scheduler s(c, on({"emu:0"}), "1");
  std::vector<float> y1(1), y2(1);
  auto first = std::async(std::launch::async, [&] { s.infer(x.data(), 1, y1.data()); });
  std::this_thread::sleep_for(100ms);  // first is queued, its batch waiting out the delay
  EXPECT_EQ(code_of([&] { s.infer(x.data() + 27, 1, y2.data()); }),
            status_code::resource_exhausted);
  first.get();
  EXPECT_EQ(y1[0], want[0]);
  s.infer(x.data() + 27, 1, y2.data());  // room again
  EXPECT_EQ(y2[0], want[1]);
}

TEST_F(ServeScheduler, ARequestWhoseDeadlinePassesInTheQueueIsDroppedUnrun) {
  const auto x = inputs(4, 5);
  const auto want = expected(x);
  // One instance, whose first batch waits 0.3 s for company: the second request, with a 30 ms
  // deadline, is still queued when its deadline passes.
  scheduler s(config(true, 64, 300'000), on({"emu:0"}), "1");
  std::vector<float> y1(1), y(1, -7.0f);
  auto first = std::async(std::launch::async, [&] { s.infer(x.data(), 1, y1.data()); });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(
      code_of([&] { s.infer(x.data() + 27, 1, y.data(), fpyga::serve::clock::now() + 30ms); }),
      status_code::deadline_exceeded);
  first.get();
  EXPECT_EQ(y1[0], want[0]);
  EXPECT_EQ(y[0], -7.0f);          // never written
  EXPECT_EQ(s.batches_run(), 1u);  // the dropped request was not run
  // A deadline already past is refused at once.
  EXPECT_EQ(code_of([&] { s.infer(x.data(), 1, y.data(), fpyga::serve::clock::now() - 1ms); }),
            status_code::deadline_exceeded);
}

TEST_F(ServeScheduler, ADeadlinePassingWhileABatchWaitsOutItsDelayEndsTheWaitForThatRequest) {
  const auto x = inputs(4, 6);
  // One request alone in a model whose batches wait 3 s for 64 rows: its 50 ms deadline ends
  // the wait; it is dropped then, unrun (not after the 3 s delay).
  scheduler s(config(true, 64, 3'000'000, {64}), on({"emu:0"}), "1");
  std::vector<float> y(1, -7.0f);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(code_of([&] { s.infer(x.data(), 1, y.data(), fpyga::serve::clock::now() + 50ms); }),
            status_code::deadline_exceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(y[0], -7.0f);
  EXPECT_EQ(s.batches_run(), 0u);
}

TEST_F(ServeScheduler, DrainFinishesAcceptedRequestsThenRefuses) {
  const auto x = inputs(200, 7);
  const auto want = expected(x);
  scheduler s(config(true, 32, 5'000), on({"emu:0"}), "1");
  std::vector<std::vector<float>> ys(20, std::vector<float>(10));
  std::vector<std::future<void>> fs;
  for (std::size_t i = 0; i < 20; ++i)
    fs.push_back(std::async(std::launch::async,
                            [&, i] { s.infer(x.data() + i * 10 * 27, 10, ys[i].data()); }));
  std::this_thread::sleep_for(2ms);
  s.drain();
  std::size_t answered = 0, refused = 0;
  for (std::size_t i = 0; i < 20; ++i) {
    try {
      fs[i].get();
      ++answered;
      for (std::size_t r = 0; r < 10; ++r) ASSERT_EQ(ys[i][r], want[i * 10 + r]);
    } catch (const request_error& e) {
      EXPECT_EQ(e.code(), status_code::unavailable);  // came after drain began
      ++refused;
    }
  }
  EXPECT_EQ(answered + refused, 20u);
  std::vector<float> y(1);
  EXPECT_EQ(code_of([&] { s.infer(x.data(), 1, y.data()); }), status_code::unavailable);
}

}  // namespace
