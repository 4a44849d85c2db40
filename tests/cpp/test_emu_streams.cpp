// emu running kernels joined by AXI4-Streams: the xclbins of kernels/streams (built by the
// toolchain's stream mode), each CU in its own thread, FIFOs of the declared depth, deadlock
// detection, free-running kernels, unloads that release blocked kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "fpyga/fpyga.hpp"
#include "test_emu_util.hpp"
#include "test_support.hpp"

namespace {

using fpyga::test::built_xclbin_dir;

/// A buffer of `n` ints for argument `arg` of `k` (in its bank).
fpyga::buffer int_buffer(const fpyga::device&, const fpyga::kernel& k, unsigned arg,
                         std::size_t n) {
  return fpyga::buffer(k, arg, n * sizeof(int));
}

void put(fpyga::buffer& b, const std::vector<int>& v) {
  std::copy(v.begin(), v.end(), b.as<int>().begin());
  b.sync_to_device();
}

std::vector<int> get(fpyga::buffer& b) {
  b.sync_from_device();
  auto s = b.as<int>();
  return {s.begin(), s.end()};
}

/// The error a failed run reports.
std::string failure_of(fpyga::run& r) {
  try {
    r.wait();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(emu_streams, chain_load_compute_store) {
  FPYGA_REQUIRE_FILE(path, built_xclbin_dir() / "stream_chain.xclbin");
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path.string());
  auto load = ov.kernel("chain_load");
  auto compute = ov.kernel("chain_compute");
  auto store = ov.kernel("chain_store");
  constexpr int n = 5000;  // many times the FIFOs' depth (16)
  std::vector<int> in(n);
  std::iota(in.begin(), in.end(), -1000);
  auto a = int_buffer(dev, load, 0, n);
  auto out = int_buffer(dev, store, 1, n);
  put(a, in);
  // The host passes only the host arguments; the streams are the design's. The consumer is
  // started last: the producer waits on a full FIFO meanwhile, as on a card.
  for (int pass = 0; pass < 2; ++pass) {
    auto r1 = load.start(a, n);
    auto r2 = compute.start(n, 3, 7 + pass);
    auto r3 = store.start(out, n);
    r1.wait();
    r2.wait();
    r3.wait();
    const auto got = get(out);
    for (int i = 0; i < n; ++i)
      ASSERT_EQ(got[i], in[i] * 3 + 7 + pass) << "element " << i << " of pass " << pass;
  }
}

TEST(emu_streams, chain_equals_the_memory_mapped_kernel) {
  FPYGA_REQUIRE_FILE(path, built_xclbin_dir() / "stream_chain.xclbin");
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path.string());
  auto mm = ov.kernel("chain_mm");
  constexpr int n = 777;
  std::vector<int> in(n);
  for (int i = 0; i < n; ++i) in[i] = (i * 7919) % 2001 - 1000;
  auto a = int_buffer(dev, mm, 0, n);
  auto ref = int_buffer(dev, mm, 1, n);
  auto out = int_buffer(dev, mm, 1, n);
  put(a, in);
  mm.call(a, ref, n, -5, 11);
  // The store kernel started first and the load called on this thread: the load's writes wait
  // for room, which the already running compute and store make.
  auto r3 = ov.kernel("chain_store").start(out, n);
  auto r2 = ov.kernel("chain_compute").start(n, -5, 11);
  ov.kernel("chain_load").call(a, n);
  r2.wait();
  r3.wait();
  EXPECT_EQ(get(out), get(ref));
}

TEST(emu_streams, ap_axiu_side_channels_cross_the_fifo) {
  FPYGA_REQUIRE_FILE(path, built_xclbin_dir() / "stream_packets.xclbin");
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path.string());
  auto packetize = ov.kernel("axis_packetize");
  auto collect = ov.kernel("axis_collect");
  constexpr int n = 50, packet = 8;
  std::vector<int> in(n);
  for (int i = 0; i < n; ++i) in[i] = i * 1001 - 7;
  auto a = int_buffer(dev, packetize, 0, n);
  auto data = int_buffer(dev, collect, 1, n);
  auto side = int_buffer(dev, collect, 2, n);
  put(a, in);
  auto rc = collect.start(data, side, n);
  packetize.call(a, n, packet);
  rc.wait();
  EXPECT_EQ(get(data), in);
  const auto s = get(side);
  int packets = 0;
  for (int i = 0; i < n; ++i) {
    const bool last = (i + 1) % packet == 0 || i + 1 == n;
    packets += last;
    EXPECT_EQ(s[i] & 1, last ? 1 : 0) << "TLAST of beat " << i;
    EXPECT_EQ((s[i] >> 1) & 0xF, i % 16) << "TUSER of beat " << i;
    EXPECT_EQ((s[i] >> 5) & 0x3, (i / packet) % 4) << "TID of beat " << i;
    EXPECT_EQ((s[i] >> 7) & 0x7, 5) << "TDEST of beat " << i;
    EXPECT_EQ((s[i] >> 10) & 0xF, i % 2 ? 0xF : 0x3) << "TKEEP of beat " << i;
  }
  EXPECT_EQ(packets, (n + packet - 1) / packet);
}

TEST(emu_streams, stream_arguments_are_not_host_arguments) {
  FPYGA_REQUIRE_FILE(path, built_xclbin_dir() / "stream_chain.xclbin");
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path.string());
  auto load = ov.kernel("chain_load");
  fpyga::buffer a(dev, 64, load.args().at(0).memories.at(0));
  try {
    load.call(a, a, 4);  // a value for the stream 'out' too
    FAIL() << "a value for a stream argument was accepted";
  } catch (const fpyga::type_error& e) {
    EXPECT_NE(std::string(e.what()).find("'out'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("stream"), std::string::npos) << e.what();
  }
}

TEST(emu_streams, free_running_kernel_runs_from_load_to_unload) {
  FPYGA_REQUIRE_FILE(path, built_xclbin_dir() / "stream_free_running.xclbin");
  auto dev = fpyga::device::open("emu");
  for (int load_count = 0; load_count < 3; ++load_count) {
    // fr_increment is never started by the host; at each unload it is blocked reading its
    // empty input, and the unload must end it rather than hang.
    fpyga::overlay ov(dev, path.string());
    auto source = ov.kernel("fr_source");
    auto sink = ov.kernel("fr_sink");
    constexpr int n = 300;
    std::vector<int> in(n);
    std::iota(in.begin(), in.end(), load_count * 1000);
    auto a = int_buffer(dev, source, 0, n);
    auto out = int_buffer(dev, sink, 1, n);
    put(a, in);
    auto rs = sink.start(out, n);
    auto rp = source.start(a, n);
    rp.wait();
    rs.wait();
    const auto got = get(out);
    for (int i = 0; i < n; ++i) ASSERT_EQ(got[i], in[i] + 1) << "element " << i;
  }
}

TEST(emu_streams, unload_does_not_hang_on_a_free_running_kernel_that_never_ends) {
  FPYGA_REQUIRE_FILE(path, built_xclbin_dir() / "stream_free_running_count.xclbin");
  auto dev = fpyga::device::open("emu");
  fpyga::test::warning_capture warnings;
  {
    fpyga::overlay ov(dev, path.string());
    auto take = ov.kernel("fr_take");
    auto out = int_buffer(dev, take, 1, 100);
    take.call(out, 100);
    const auto got = get(out);
    for (int i = 0; i < 100; ++i) ASSERT_EQ(got[i], i);
    // fr_count now waits on its full FIFO forever; it never reads, so the unload cannot end it.
    ov.release();
  }
  bool said = false;
  for (const auto& m : warnings.messages())
    said = said || (m.find("'fr_count_1'") != std::string::npos &&
                    m.find("did not stop") != std::string::npos);
  EXPECT_TRUE(said) << "no warning named the free-running kernel left behind";
  // The device loads and runs it again.
  fpyga::overlay ov(dev, path.string());
  auto take = ov.kernel("fr_take");
  auto out = int_buffer(dev, take, 1, 10);
  take.call(out, 10);
  EXPECT_EQ(get(out)[9], 9);
  ov.release();  // leaves that fr_count behind too, while the warnings are still captured here
}

TEST(emu_streams, free_running_kernel_cannot_be_started_by_the_host) {
  FPYGA_REQUIRE_FILE(path, built_xclbin_dir() / "stream_free_running.xclbin");
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path.string());
  EXPECT_THROW(ov.kernel("fr_increment").call(), fpyga::error);
}

class emu_streams_depth : public ::testing::TestWithParam<int> {};

TEST_P(emu_streams_depth, back_pressure_holds_the_producer_to_the_depth) {
  const int depth = GetParam();
  FPYGA_REQUIRE_FILE(
      path, built_xclbin_dir() / ("stream_handshake_d" + std::to_string(depth) + ".xclbin"));
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path.string());
  auto producer = ov.kernel("bp_producer");
  auto consumer = ov.kernel("bp_consumer");
  constexpr int n = 40;
  auto progress = int_buffer(dev, producer, 1, 1);
  auto values = int_buffer(dev, consumer, 2, n);
  auto ahead = int_buffer(dev, consumer, 3, n);
  put(progress, {0});
  auto rc = consumer.start(progress, values, ahead, n);
  auto rp = producer.start(progress, n);
  rp.wait();
  rc.wait();
  const auto v = get(values);
  for (int i = 0; i < n; ++i) ASSERT_EQ(v[i], i);
  // Before each read the slow consumer sees how many elements the producer wrote beyond what it
  // read: never more than the depth, and the depth itself once the producer has caught up.
  const auto a = get(ahead);
  for (int i = 0; i < n; ++i) EXPECT_LE(a[i], depth) << "before read " << i;
  EXPECT_EQ(*std::max_element(a.begin(), a.end() - depth), depth);
}

TEST_P(emu_streams_depth, deadlock_is_reported_naming_the_streams) {
  const int depth = GetParam();
  FPYGA_REQUIRE_FILE(
      path, built_xclbin_dir() / ("stream_handshake_d" + std::to_string(depth) + ".xclbin"));
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path.string());
  auto ping = ov.kernel("hs_ping");
  auto pong = ov.kernel("hs_pong");
  constexpr int n = 8;
  auto got_ping = int_buffer(dev, ping, 2, n);
  auto got_pong = int_buffer(dev, pong, 2, n);
  auto exchange = [&](int ping_writes_first, int pong_writes_first, int count) {
    auto r1 = ping.start(got_ping, count, ping_writes_first);
    auto r2 = pong.start(got_pong, count, pong_writes_first);
    return std::pair{std::move(r1), std::move(r2)};
  };
  // Both write first: each fills its FIFO (depth < n) and waits for room the other never makes.
  // Then both read first: each waits for data.
  for (auto [pw, qw] : {std::pair{1, 1}, std::pair{0, 0}}) {
    auto [r1, r2] = exchange(pw, qw, n);
    const std::string e1 = failure_of(r1), e2 = failure_of(r2);
    for (const std::string& e : {e1, e2}) {
      EXPECT_NE(e.find("deadlocked"), std::string::npos) << e;
      EXPECT_NE(e.find("'dc_0' (hs_ping_1.to_pong -> hs_pong_1.from_ping)"), std::string::npos)
          << e;
      EXPECT_NE(e.find("'dc_1' (hs_pong_1.to_ping -> hs_ping_1.from_pong)"), std::string::npos)
          << e;
      EXPECT_NE(e.find(pw ? "full (depth " + std::to_string(depth) + ")" : "empty"),
                std::string::npos)
          << e;
    }
    // The device and the same streams work afterwards (their leftovers were dropped).
    auto [s1, s2] = exchange(1, 0, n);
    s1.wait();
    s2.wait();
    std::vector<int> want(n);
    std::iota(want.begin(), want.end(), 0);
    EXPECT_EQ(get(got_ping), want);
    EXPECT_EQ(get(got_pong), want);
  }
  // Both writing first completes when everything fits in the FIFOs.
  auto [f1, f2] = exchange(1, 1, depth);
  f1.wait();
  f2.wait();
}

INSTANTIATE_TEST_SUITE_P(depths, emu_streams_depth, ::testing::Values(1, 2));

TEST(emu_streams, a_run_waiting_for_a_kernel_the_host_has_not_started_is_no_deadlock) {
  FPYGA_REQUIRE_FILE(path, built_xclbin_dir() / "stream_handshake_d2.xclbin");
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path.string());
  auto ping = ov.kernel("hs_ping");
  auto pong = ov.kernel("hs_pong");
  constexpr int n = 6;
  auto got_ping = int_buffer(dev, ping, 2, n);
  auto got_pong = int_buffer(dev, pong, 2, n);
  // hs_ping reads first and hs_pong is not started yet: the host may still start it, so the run
  // waits, as on a card, and the overlay cannot be released under it.
  auto r1 = ping.start(got_ping, n, 0);
  EXPECT_EQ(r1.wait(std::chrono::milliseconds(300)), fpyga::run_state::running);
  EXPECT_THROW(ov.release(), fpyga::error);
  auto r2 = pong.start(got_pong, n, 1);
  r1.wait();
  r2.wait();
  std::vector<int> want(n);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(get(got_ping), want);
  EXPECT_EQ(get(got_pong), want);
}

TEST(emu_streams, a_run_waiting_on_an_idle_kernel_fails_after_the_stall_limit) {
  FPYGA_REQUIRE_FILE(path, built_xclbin_dir() / "stream_handshake_d2.xclbin");
  auto dev = fpyga::device::open("emu");
  ::setenv("FPYGA_EMU_STREAM_STALL", "0.3", 1);  // read when the xclbin loads
  fpyga::overlay ov(dev, path.string());
  ::unsetenv("FPYGA_EMU_STREAM_STALL");
  auto producer = ov.kernel("bp_producer");
  auto consumer = ov.kernel("bp_consumer");
  auto progress = int_buffer(dev, producer, 1, 1);
  auto values = int_buffer(dev, consumer, 2, 6);
  auto ahead = int_buffer(dev, consumer, 3, 6);
  // The producer writes 2 elements (the depth) and ends; the consumer wants 6: it then waits on an
  // empty stream whose producer runs nothing, which on a card hangs until the host starts it again.
  producer.start(progress, 2).wait();
  auto r = consumer.start(progress, values, ahead, 6);
  EXPECT_EQ(r.wait(std::chrono::milliseconds(20000)), fpyga::run_state::error);
  const std::string e = failure_of(r);
  EXPECT_NE(e.find("'bp_consumer_1' waited"), std::string::npos) << e;
  EXPECT_NE(e.find("'dc_2' (bp_producer_1.out -> bp_consumer_1.in), which is empty"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("while 'bp_producer_1', its other end, ran nothing"), std::string::npos) << e;
  EXPECT_EQ(get(values)[1], 1);  // what was there arrived
  // The device goes on: a run that gets all it waits for completes.
  auto rc = consumer.start(progress, values, ahead, 4);
  producer.start(progress, 4).wait();
  rc.wait();
  EXPECT_EQ(get(values), (std::vector<int>{0, 1, 2, 3, 0, 0}));
}

TEST(emu_streams, kernel_so_without_the_stream_glue_is_refused) {
  // The same description as stream_chain.xclbin around a .so compiled without fpyga's glue, as
  // a Vitis sw_emu build's is: emu cannot see its streams and says so at load.
  FPYGA_REQUIRE_FILE(built, built_xclbin_dir() / "stream_chain.xclbin");
  FPYGA_REQUIRE_FILE(
      src, std::filesystem::path(FPYGA_SOURCE_DIR_DEFAULT) / "kernels" / "streams" / "chain.cpp");
  if (fpyga::test::hls_include_dir().empty()) GTEST_SKIP() << "no HLS headers";
  auto so = fpyga::test::compile_so("chain_plain", fpyga::test::slurp(src), true);
  ASSERT_FALSE(so.empty());
  auto bin = fpyga::xclbin::read(built.string());
  bin.bitstream = std::move(so);
  const std::string packed = (fpyga::test::scratch_dir() / "chain_plain.xclbin").string();
  bin.write(packed);
  auto dev = fpyga::device::open("emu");
  try {
    fpyga::overlay ov(dev, packed);
    FAIL() << "loaded";
  } catch (const fpyga::not_supported_error& e) {
    EXPECT_NE(std::string(e.what()).find("not built by fpyga's kernel toolchain"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("chain_load_1.out"), std::string::npos) << e.what();
  }
}
