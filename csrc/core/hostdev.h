// KQ_HD marks a function that is compiled for the CPU and, when nvcc builds
// the CUDA backend, for the GPU as well (__host__ __device__). The reference
// code that must give the same bytes on both (the block quantizers, their
// scale searches, the fp16 conversions) is written once with it. Host compilers, and the host emulation of the
// device code (csrc/cuda_emu), see an empty macro.
#pragma once

#ifdef __CUDACC__
#define KQ_HD __host__ __device__
#else
#define KQ_HD
#endif
