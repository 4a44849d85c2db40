// Vector addition, the Vitis "hello world": out_r[i] = in1[i] + in2[i] for i < size.
// The same source builds for F1 with `v++ -t hw -k vadd` and, here, into an sw_emu xclbin.

extern "C" {

void vadd(const unsigned int* in1, const unsigned int* in2, unsigned int* out_r, int size) {
#pragma HLS INTERFACE m_axi port = in1 offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = in2 offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = out_r offset = slave bundle = gmem
#pragma HLS INTERFACE s_axilite port = in1 bundle = control
#pragma HLS INTERFACE s_axilite port = in2 bundle = control
#pragma HLS INTERFACE s_axilite port = out_r bundle = control
#pragma HLS INTERFACE s_axilite port = size bundle = control
#pragma HLS INTERFACE s_axilite port = return bundle = control
vadd_loop:
  for (int i = 0; i < size; ++i) {
#pragma HLS PIPELINE II = 1
    out_r[i] = in1[i] + in2[i];
  }
}

}  // extern "C"
