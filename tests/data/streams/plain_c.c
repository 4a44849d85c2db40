/* A plain C kernel, compiled as C (as v++ compiles .c files): no extern "C" needed. */
void c_scale(const int* in, int* out, int factor, int n) {
#pragma HLS INTERFACE m_axi port = in
#pragma HLS INTERFACE m_axi port = out
  for (int i = 0; i < n; ++i) out[i] = in[i] * factor;
}
