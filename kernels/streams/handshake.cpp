// Two kernels that exchange n elements each way over a pair of streams, in an order the host
// chooses: `first_write` 1 writes all n, then reads n; 0 reads first. Whether a pair of orders
// completes depends on the FIFO depths, as on a card: both writing first deadlocks once n exceeds
// the depth (each waits for room the other never makes), both reading first always deadlocks.
// The tests use them for emu's deadlock detection; bp_* measure back-pressure.
#include <hls_stream.h>

#include <chrono>
#include <thread>

namespace {
void exchange(hls::stream<int>& out, hls::stream<int>& in, int* got, int n, int first_write) {
  if (first_write) {
    for (int i = 0; i < n; ++i) out.write(i);
    for (int i = 0; i < n; ++i) got[i] = in.read();
  } else {
    for (int i = 0; i < n; ++i) got[i] = in.read();
    for (int i = 0; i < n; ++i) out.write(i);
  }
}
}  // namespace

extern "C" {

void hs_ping(hls::stream<int>& to_pong, hls::stream<int>& from_pong, int* got, int n,
             int first_write) {
#pragma HLS INTERFACE axis port = to_pong
#pragma HLS INTERFACE axis port = from_pong
#pragma HLS INTERFACE m_axi port = got offset = slave bundle = gmem
  exchange(to_pong, from_pong, got, n, first_write);
}

void hs_pong(hls::stream<int>& from_ping, hls::stream<int>& to_ping, int* got, int n,
             int first_write) {
#pragma HLS INTERFACE axis port = from_ping
#pragma HLS INTERFACE axis port = to_ping
#pragma HLS INTERFACE m_axi port = got offset = slave bundle = gmem
  exchange(to_ping, from_ping, got, n, first_write);
}

// Back-pressure probe: the producer publishes how many writes have returned; the consumer reads
// slowly and records, before each read, how many elements the producer got ahead of it (at most
// the FIFO's depth on a card).
void bp_producer(hls::stream<int>& out, int* progress, int n) {
#pragma HLS INTERFACE axis port = out
#pragma HLS INTERFACE m_axi port = progress offset = slave bundle = gmem
  for (int i = 0; i < n; ++i) {
    out.write(i);
    __atomic_store_n(progress, i + 1, __ATOMIC_RELEASE);
  }
}

void bp_consumer(hls::stream<int>& in, const int* progress, int* values, int* ahead, int n) {
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE m_axi port = progress offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = values offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = ahead offset = slave bundle = gmem
  for (int i = 0; i < n; ++i) {
    // Slow enough that an unbounded FIFO would let the producer finish first.
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    ahead[i] = __atomic_load_n(progress, __ATOMIC_ACQUIRE) - i;
    values[i] = in.read();
  }
}
}
