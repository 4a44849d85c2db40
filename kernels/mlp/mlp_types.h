// Types and layer configurations of the mlp kernel, written the way hls4ml writes a project's
// defines.h and parameters.h, for hls4ml's own nnet_utils templates (found through hls4ml's
// package data, never copied here).
#pragma once

#include "ap_fixed.h"
#include "ap_int.h"
#include "nnet_utils/nnet_activation.h"
#include "nnet_utils/nnet_dense.h"

// hls4ml's default precision: 16 bits, 6 of them integer (AP_TRN, AP_WRAP).
typedef ap_fixed<16, 6> input_t;
typedef ap_fixed<16, 6> result_t;
typedef ap_fixed<16, 6> layer_t;
typedef ap_fixed<16, 6> weight_t;
typedef ap_fixed<16, 6> bias_t;
// Wide enough that every product of two ap_fixed<16,6> (exactly 20 fractional bits) and the sums
// of up to 40 of them are kept exactly; the cast to layer_t then truncates once per output.
typedef ap_fixed<32, 12> accum_t;

constexpr unsigned mlp_n_in = 27;
constexpr unsigned mlp_n_out = 1;

template <unsigned N_IN, unsigned N_OUT>
struct mlp_dense_config : nnet::dense_config {
  static const unsigned n_in = N_IN;
  static const unsigned n_out = N_OUT;
  static const unsigned io_type = nnet::io_parallel;
  static const unsigned strategy = nnet::latency;
  static const unsigned reuse_factor = 1;
  static const unsigned n_zeros = 0;
  static const unsigned n_nonzeros = N_IN * N_OUT;
  static const unsigned multiplier_limit = N_IN * N_OUT;
  static const bool store_weights_in_bram = false;
  typedef ::accum_t accum_t;
  typedef ::bias_t bias_t;
  typedef ::weight_t weight_t;
  typedef ap_uint<1> index_t;
  template <class data_T, class res_T, class CONFIG_T>
  using kernel = nnet::DenseLatency<data_T, res_T, CONFIG_T>;
  template <class x_T, class y_T>
  using product = nnet::product::mult<x_T, y_T>;
};

template <unsigned N>
struct mlp_relu_config : nnet::activ_config {
  static const unsigned n_in = N;
  static const unsigned table_size = 1024;
  static const unsigned io_type = nnet::io_parallel;
  static const unsigned reuse_factor = 1;
  typedef ap_fixed<18, 8> table_t;
};
