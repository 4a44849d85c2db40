// A load -> increment -> store chain joined by AXI4-Streams, for the stream metadata tests: the
// load kernel writes through a helper function, the free-running increment kernel copies through
// a template (directions are found through both), the store kernel reads with .read().
#include <ap_axi_sdata.h>
#include <ap_int.h>
#include <hls_stream.h>

typedef ap_axiu<32, 0, 0, 0> pkt;

static void load(const int* in, hls::stream<pkt>& s, int n) {
  for (int i = 0; i < n; ++i) {
    pkt p;
    p.data = in[i];
    p.keep = -1;
    p.last = i == n - 1;
    s.write(p);
  }
}

template <class T>
void copy_one(hls::stream<T>& a, hls::stream<T>& b) {
  T v;
  a >> v;
  v.data += 1;
  b << v;
}

extern "C" {

void meta_load(const int* in, hls::stream<pkt>& out, int n) {
#pragma HLS INTERFACE m_axi port = in bundle = gmem
#pragma HLS INTERFACE axis port = out
  load(in, out, n);
}

void meta_inc(hls::stream<pkt>& in, hls::stream<pkt>& out) {
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE axis port = out
#pragma HLS INTERFACE ap_ctrl_none port = return
  copy_one(in, out);
}

void meta_store(hls::stream<pkt>& in, int* out, int n) {
#pragma HLS INTERFACE axis port = in
  for (int i = 0; i < n; ++i) out[i] = in.read().data;
}

// A 64-bit stream, for the width checks.
void meta_wide(hls::stream<ap_axiu<64, 0, 0, 0> >& in, long long* out) { out[0] = in.read().data; }

// Reads and writes one stream: no direction.
void meta_both(hls::stream<int>& s) { s.write(s.read()); }

// Never touches its stream.
void meta_unused(hls::stream<int>& s, int* out) { out[0] = 0; }

// Free-running with a host argument.
void meta_free_scalar(hls::stream<int>& in, int n) {
#pragma HLS INTERFACE ap_ctrl_none port = return
  (void)in.read();
  (void)n;
}

}
