// A free-running kernel fed by streams: fr_increment has no control interface (ap_ctrl_none), so
// it runs from the moment the xclbin is loaded until it is unloaded, as on a card; the host only
// starts fr_source and fr_sink, which move data between buffers and its streams.
#include <hls_stream.h>

extern "C" {

void fr_source(const int* in, hls::stream<int>& out, int n) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem
#pragma HLS INTERFACE axis port = out
#pragma HLS INTERFACE s_axilite port = in
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = return
  for (int i = 0; i < n; ++i) out.write(in[i]);
}

// One element per pass; a free-running kernel's function is entered again as soon as it returns.
void fr_increment(hls::stream<int>& in, hls::stream<int>& out) {
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE axis port = out
#pragma HLS INTERFACE ap_ctrl_none port = return
  out.write(in.read() + 1);
}

// A free-running kernel that never returns and never reads: it only ever waits on a full FIFO,
// so an unload cannot end it (emu leaves it parked, and says so).
void fr_count(hls::stream<int>& out) {
#pragma HLS INTERFACE axis port = out
#pragma HLS INTERFACE ap_ctrl_none port = return
  for (int i = 0;; ++i) out.write(i);
}

void fr_take(hls::stream<int>& in, int* out, int n) {
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem
  for (int i = 0; i < n; ++i) out[i] = in.read();
}

void fr_sink(hls::stream<int>& in, int* out, int n) {
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem
#pragma HLS INTERFACE s_axilite port = out
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = return
  for (int i = 0; i < n; ++i) out[i] = in.read();
}
}
