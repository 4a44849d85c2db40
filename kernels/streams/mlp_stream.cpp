// The mlp network (kernels/mlp: the muon regressor's shape, same generated weights) written as an
// hls4ml io_stream project writes it: every layer reads and writes hls::stream<nnet::array<...>>
// with nnet_utils' stream templates. Wrapped as three kernels joined by streams: mlps_load packs
// each sample's 27 inputs into one stream element, mlps_network runs the io_stream network once per
// sample, mlps_store unpacks the result. Its outputs equal mlp_batch's (the same layer kernels
// and types; only the interfaces differ).
#include "mlp_types.h"
#include "mlp_weights.h"
#include "nnet_utils/nnet_activation_stream.h"
#include "nnet_utils/nnet_dense_stream.h"

template <class T, unsigned N>
using pack = nnet::array<T, N>;
typedef pack<input_t, mlp_n_in> input_pack;
typedef pack<result_t, mlp_n_out> result_pack;

namespace {

// hls4ml's io_stream myproject(): one call consumes one input element and produces one result.
void mlp_stream_network(hls::stream<input_pack>& input, hls::stream<result_pack>& output) {
#pragma HLS DATAFLOW
  hls::stream<pack<layer_t, 35>> d2("d2"), a3("a3");
  nnet::dense<input_pack, pack<layer_t, 35>, mlp_dense_config<27, 35>>(input, d2, w2, b2);
  nnet::relu<pack<layer_t, 35>, pack<layer_t, 35>, mlp_relu_config<35>>(d2, a3);
  hls::stream<pack<layer_t, 20>> d4("d4"), a5("a5");
  nnet::dense<pack<layer_t, 35>, pack<layer_t, 20>, mlp_dense_config<35, 20>>(a3, d4, w4, b4);
  nnet::relu<pack<layer_t, 20>, pack<layer_t, 20>, mlp_relu_config<20>>(d4, a5);
  hls::stream<pack<layer_t, 25>> d6("d6"), a7("a7");
  nnet::dense<pack<layer_t, 20>, pack<layer_t, 25>, mlp_dense_config<20, 25>>(a5, d6, w6, b6);
  nnet::relu<pack<layer_t, 25>, pack<layer_t, 25>, mlp_relu_config<25>>(d6, a7);
  hls::stream<pack<layer_t, 40>> d8("d8"), a9("a9");
  nnet::dense<pack<layer_t, 25>, pack<layer_t, 40>, mlp_dense_config<25, 40>>(a7, d8, w8, b8);
  nnet::relu<pack<layer_t, 40>, pack<layer_t, 40>, mlp_relu_config<40>>(d8, a9);
  hls::stream<pack<layer_t, 20>> d10("d10"), a11("a11");
  nnet::dense<pack<layer_t, 40>, pack<layer_t, 20>, mlp_dense_config<40, 20>>(a9, d10, w10, b10);
  nnet::relu<pack<layer_t, 20>, pack<layer_t, 20>, mlp_relu_config<20>>(d10, a11);
  hls::stream<pack<layer_t, 15>> d12("d12"), a13("a13");
  nnet::dense<pack<layer_t, 20>, pack<layer_t, 15>, mlp_dense_config<20, 15>>(a11, d12, w12, b12);
  nnet::relu<pack<layer_t, 15>, pack<layer_t, 15>, mlp_relu_config<15>>(d12, a13);
  nnet::dense<pack<layer_t, 15>, result_pack, mlp_dense_config<15, 1>>(a13, output, w14, b14);
}

}  // namespace

extern "C" {

void mlps_load(const input_t* in, hls::stream<input_pack>& out, int n) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem
#pragma HLS INTERFACE axis port = out
  for (int s = 0; s < n; ++s) {
    input_pack p;
    for (unsigned i = 0; i < mlp_n_in; ++i) p[i] = in[s * mlp_n_in + i];
    out.write(p);
  }
}

void mlps_network(hls::stream<input_pack>& in, hls::stream<result_pack>& out, int n) {
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE axis port = out
  for (int s = 0; s < n; ++s) mlp_stream_network(in, out);
}

void mlps_store(hls::stream<result_pack>& in, result_t* out, int n) {
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem
  for (int s = 0; s < n; ++s) {
    const result_pack p = in.read();
    for (unsigned i = 0; i < mlp_n_out; ++i) out[s * mlp_n_out + i] = p[i];
  }
}
}
