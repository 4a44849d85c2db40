// The mlp kernel (kernels/mlp) as an OpenCL C overlay: the CMS muon regressor's shape,
// 27-35-20-25-40-20-15-1, ReLU between dense layers, linear output.
//
// Numbers are ap_fixed<16,6> raw bits held in shorts (value * 2^10), computed as hls4ml's dense
// layers do with accum_t = ap_fixed<32,12>: each product and the bias are summed exactly in 32
// bits (20 fractional bits, wrapping), then cast to ap_fixed<16,6> with AP_TRN (floor: drop 10
// bits) and AP_WRAP (keep the low 16 bits). Unsigned arithmetic gives the wrap-around without
// undefined behaviour.
//
// The weights are not compiled in: `params` holds, layer by layer, weights_raw (input-major,
// w[i * n_out + j], hls4ml's layout) then biases_raw, as kernels/mlp/gen_weights.py writes them to
// mlp_weights.json, so the same seeded generator feeds both kernels.
#define MLP_LAYERS 7
__constant int mlp_shape[MLP_LAYERS + 1] = {27, 35, 20, 25, 40, 20, 15, 1};
#define MLP_WIDEST 40

static short to_layer(uint acc) { return (short)(ushort)((uint)((int)acc >> 10)); }

static void mlp_network(__global const short* x_in, __global short* y_out,
                        __global const short* params) {
  short a[MLP_WIDEST], b[MLP_WIDEST];
  for (int i = 0; i < mlp_shape[0]; ++i) a[i] = x_in[i];
  int p = 0;
  for (int l = 0; l < MLP_LAYERS; ++l) {
    const int n_in = mlp_shape[l], n_out = mlp_shape[l + 1];
    __global const short* w = params + p;
    __global const short* bias = params + p + n_in * n_out;
    for (int j = 0; j < n_out; ++j) {
      uint acc = (uint)((int)bias[j] << 10);
      for (int i = 0; i < n_in; ++i) acc += (uint)((int)a[i] * (int)w[i * n_out + j]);
      short v = to_layer(acc);
      if (l < MLP_LAYERS - 1 && v < 0) v = 0;  // ReLU
      b[j] = v;
    }
    for (int j = 0; j < n_out; ++j) a[j] = b[j];
    p += n_in * n_out + n_out;
  }
  y_out[0] = a[0];
}

// One sample per call: in[27] -> out[1].
__kernel void mlp(__global const short* in, __global short* out, __global const short* params) {
  mlp_network(in, out, params);
}

// n samples per call: in[n * 27] -> out[n].
__kernel void mlp_batch(__global const short* in, __global short* out,
                        __global const short* params, int n) {
  for (int s = 0; s < n; ++s) mlp_network(in + s * 27, out + s, params);
}
