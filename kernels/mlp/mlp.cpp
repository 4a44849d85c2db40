// An hls4ml-style MLP with the CMS muon regressor's shape: 27 inputs, hidden layers 35, 20, 25,
// 40, 20, 15 (ReLU), 1 linear output, everything ap_fixed<16,6>. Weights are generated at build
// time by gen_weights.py (seeded) into mlp_weights.h.
//
// Kernels (m_axi buffers, s_axilite control, as F1 wrappers of hls4ml projects do):
//   mlp(in, out)           one sample per call: in[27] -> out[1]
//   mlp_batch(in, out, n)  n samples per call: in[n*27] -> out[n]
//   krnl_rtl(in, out, in_size, out_size)
//                          the interface of hls4ml VivadoAccelerator's Alveo kernel: float
//                          buffers of in_size / out_size elements, converted in the kernel
//                          (ap_fixed(float) in, to_float() out), for hosts of that interface
#include "mlp_types.h"
#include "mlp_weights.h"

namespace {

// The network, as hls4ml's myproject(): dense and activation layers from nnet_utils.
void mlp_network(input_t input[mlp_n_in], result_t output[mlp_n_out]) {
#pragma HLS PIPELINE
  layer_t d2[35], a3[35];
  nnet::dense<input_t, layer_t, mlp_dense_config<27, 35>>(input, d2, w2, b2);
  nnet::relu<layer_t, layer_t, mlp_relu_config<35>>(d2, a3);
  layer_t d4[20], a5[20];
  nnet::dense<layer_t, layer_t, mlp_dense_config<35, 20>>(a3, d4, w4, b4);
  nnet::relu<layer_t, layer_t, mlp_relu_config<20>>(d4, a5);
  layer_t d6[25], a7[25];
  nnet::dense<layer_t, layer_t, mlp_dense_config<20, 25>>(a5, d6, w6, b6);
  nnet::relu<layer_t, layer_t, mlp_relu_config<25>>(d6, a7);
  layer_t d8[40], a9[40];
  nnet::dense<layer_t, layer_t, mlp_dense_config<25, 40>>(a7, d8, w8, b8);
  nnet::relu<layer_t, layer_t, mlp_relu_config<40>>(d8, a9);
  layer_t d10[20], a11[20];
  nnet::dense<layer_t, layer_t, mlp_dense_config<40, 20>>(a9, d10, w10, b10);
  nnet::relu<layer_t, layer_t, mlp_relu_config<20>>(d10, a11);
  layer_t d12[15], a13[15];
  nnet::dense<layer_t, layer_t, mlp_dense_config<20, 15>>(a11, d12, w12, b12);
  nnet::relu<layer_t, layer_t, mlp_relu_config<15>>(d12, a13);
  nnet::dense<layer_t, result_t, mlp_dense_config<15, 1>>(a13, output, w14, b14);
}

}  // namespace

extern "C" {

void mlp(const input_t* in, result_t* out) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem
#pragma HLS INTERFACE s_axilite port = in bundle = control
#pragma HLS INTERFACE s_axilite port = out bundle = control
#pragma HLS INTERFACE s_axilite port = return bundle = control
  input_t x[mlp_n_in];
  result_t y[mlp_n_out];
  for (unsigned i = 0; i < mlp_n_in; ++i) x[i] = in[i];
  mlp_network(x, y);
  for (unsigned i = 0; i < mlp_n_out; ++i) out[i] = y[i];
}

void mlp_batch(const input_t* in, result_t* out, int n) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem
#pragma HLS INTERFACE s_axilite port = in bundle = control
#pragma HLS INTERFACE s_axilite port = out bundle = control
#pragma HLS INTERFACE s_axilite port = n bundle = control
#pragma HLS INTERFACE s_axilite port = return bundle = control
  for (int s = 0; s < n; ++s) {
    input_t x[mlp_n_in];
    result_t y[mlp_n_out];
    for (unsigned i = 0; i < mlp_n_in; ++i) x[i] = in[s * mlp_n_in + i];
    mlp_network(x, y);
    for (unsigned i = 0; i < mlp_n_out; ++i) out[s * mlp_n_out + i] = y[i];
  }
}

void krnl_rtl(const float* in, float* out, int in_size, int out_size) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem
#pragma HLS INTERFACE s_axilite port = in bundle = control
#pragma HLS INTERFACE s_axilite port = out bundle = control
#pragma HLS INTERFACE s_axilite port = in_size bundle = control
#pragma HLS INTERFACE s_axilite port = out_size bundle = control
#pragma HLS INTERFACE s_axilite port = return bundle = control
  const int n = in_size / static_cast<int>(mlp_n_in);
  for (int s = 0; s < n && (s + 1) * static_cast<int>(mlp_n_out) <= out_size; ++s) {
    input_t x[mlp_n_in];
    result_t y[mlp_n_out];
    for (unsigned i = 0; i < mlp_n_in; ++i) x[i] = input_t(in[s * mlp_n_in + i]);
    mlp_network(x, y);
    for (unsigned i = 0; i < mlp_n_out; ++i) out[s * mlp_n_out + i] = y[i].to_float();
  }
}

}  // extern "C"
