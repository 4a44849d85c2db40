// fpyga's kernel around an hls4ml project: the network `myproject(input_t[N_IN], result_t[N_OUT])`
// that hls4ml generates from a trained model (at build time, from models/<name>.json/.h5), wrapped
// with m_axi buffer arguments and s_axilite control as Vitis builds it for F1.
//
//   nn(in, out)           one sample per call: in[N_IN] -> out[N_OUT]
//   nn_batch(in, out, n)  n samples per call:  in[n * N_IN] -> out[n * N_OUT]
//
// Buffers hold the raw ap_fixed bits of input_t / result_t (ap_fixed<16,6>: one int16 each), as
// fpyga's to_fixed writes them.
#include "fpyga_nn.h"
#include "myproject.h"

namespace {

inline void infer_one(const input_t* in, result_t* out) {
#pragma HLS INLINE
  input_t x[FPYGA_NN_INPUTS];
  result_t y[FPYGA_NN_OUTPUTS];
  for (int i = 0; i < FPYGA_NN_INPUTS; ++i) x[i] = in[i];
  myproject(x, y);
  for (int i = 0; i < FPYGA_NN_OUTPUTS; ++i) out[i] = y[i];
}

}  // namespace

extern "C" {

// The network's I/O sizes, for hosts to check their buffers against before the first call (the
// kernel metadata carries types, not lengths). Plain data symbols: no effect on the kernels.
__attribute__((visibility("default"))) extern const int fpyga_nn_inputs = FPYGA_NN_INPUTS;
__attribute__((visibility("default"))) extern const int fpyga_nn_outputs = FPYGA_NN_OUTPUTS;

void nn(const input_t* in, result_t* out) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem1
#pragma HLS INTERFACE s_axilite port = in bundle = control
#pragma HLS INTERFACE s_axilite port = out bundle = control
#pragma HLS INTERFACE s_axilite port = return bundle = control
  infer_one(in, out);
}

void nn_batch(const input_t* in, result_t* out, int n) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem1
#pragma HLS INTERFACE s_axilite port = in bundle = control
#pragma HLS INTERFACE s_axilite port = out bundle = control
#pragma HLS INTERFACE s_axilite port = n bundle = control
#pragma HLS INTERFACE s_axilite port = return bundle = control
  for (int s = 0; s < n; ++s) {
#pragma HLS PIPELINE
    infer_one(in + s * FPYGA_NN_INPUTS, out + s * FPYGA_NN_OUTPUTS);
  }
}

}  // extern "C"
