// A load -> compute -> store chain, the shape of Vitis's kernel-to-kernel streaming examples:
// chain_load reads a buffer into a stream, chain_compute transforms the stream, chain_store writes
// it back to a buffer. The two streams are joined by v++ `sc=` lines (kernels/CMakeLists.txt);
// the host starts the three kernels with their memory and scalar arguments only.
// chain_mm is the same computation as one memory-mapped kernel (bench/stream_chain.py).
#include <hls_stream.h>

namespace {
// What the chain computes per element.
inline int transform(int x, int scale, int offset) {
  return x * scale + offset;
}
}  // namespace

extern "C" {

void chain_load(const int* in, hls::stream<int>& out, int n) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem
#pragma HLS INTERFACE axis port = out
#pragma HLS INTERFACE s_axilite port = in
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = return
  for (int i = 0; i < n; ++i) out.write(in[i]);
}

void chain_compute(hls::stream<int>& in, hls::stream<int>& out, int n, int scale, int offset) {
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE axis port = out
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = scale
#pragma HLS INTERFACE s_axilite port = offset
#pragma HLS INTERFACE s_axilite port = return
  for (int i = 0; i < n; ++i) out.write(transform(in.read(), scale, offset));
}

void chain_store(hls::stream<int>& in, int* out, int n) {
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem
#pragma HLS INTERFACE s_axilite port = out
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = return
  for (int i = 0; i < n; ++i) out[i] = in.read();
}

void chain_mm(const int* in, int* out, int n, int scale, int offset) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem
#pragma HLS INTERFACE s_axilite port = in
#pragma HLS INTERFACE s_axilite port = out
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = scale
#pragma HLS INTERFACE s_axilite port = offset
#pragma HLS INTERFACE s_axilite port = return
  for (int i = 0; i < n; ++i) out[i] = transform(in[i], scale, offset);
}
}
