// Vector addition as an OpenCL C overlay for platforms that build source (PoCL, GPUs):
// out_r[i] = in1[i] + in2[i] for i < size. Same signature as kernels/vadd/vadd.cpp, written as a
// single work-item loop, since fpyga enqueues kernels as tasks (global size 1), as on FPGAs.
__kernel void vadd(__global const uint* in1, __global const uint* in2, __global uint* out_r,
                   int size) {
  for (int i = 0; i < size; ++i) out_r[i] = in1[i] + in2[i];
}
