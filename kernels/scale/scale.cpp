// A kernel with an arbitrary-precision scalar argument: out[i] = floor(in[i] * factor), wrapped to
// 32 bits, for i < n. It exercises passing an ap_fixed by value from the host.
//
// Note for hosts calling the .so directly: Xilinx's ap_* classes have user-provided copy
// constructors and destructors, so the C++ ABI (Itanium, x86-64) passes `factor` by invisible
// reference: the caller passes the address of a copy holding its storage (for ap_fixed<16,6>,
// 2 bytes: the raw value * 2^10 as int16).
#include "ap_fixed.h"

extern "C" {

void scale(const int* in, int* out, int n, ap_fixed<16, 6> factor) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem
#pragma HLS INTERFACE s_axilite port = in bundle = control
#pragma HLS INTERFACE s_axilite port = out bundle = control
#pragma HLS INTERFACE s_axilite port = n bundle = control
#pragma HLS INTERFACE s_axilite port = factor bundle = control
#pragma HLS INTERFACE s_axilite port = return bundle = control
scale_loop:
  for (int i = 0; i < n; ++i) {
#pragma HLS PIPELINE II = 1
    // The product is exact (ap_fixed<48, 38>); AP_TRN floors it to an integer, AP_WRAP keeps 32 bits.
    ap_fixed<32, 32, AP_TRN, AP_WRAP> r = in[i] * factor;
    out[i] = r.to_int();
  }
}

}  // extern "C"
