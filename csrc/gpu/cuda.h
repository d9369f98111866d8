// The CUDA backend's interface, seen by shared code and the bindings.
//
// Two implementations exist and CMake links exactly one (cmake/cuda.cmake):
//   csrc/cuda/       the kernels, built when a CUDA compiler is found;
//   csrc/cuda_stub/  info() says "not compiled", everything else throws
//                    kq::Error. Shared code therefore never tests for CUDA.
//
// Conventions
//   * Every pointer argument of the compute entry points is a device pointer.
//     Host <-> device transfers are explicit (copy_to_device / copy_to_host).
//   * Quantized rows are laid out exactly as on the CPU: row r of a [rows,
//     cols] tensor starts at r * row_size(t, cols) bytes. Base pointers must be
//     aligned to 4 bytes (every block size is a multiple of its struct's
//     alignment, so then every block is aligned); kq::Error otherwise.
//   * Work runs on the legacy default stream, which orders it after work that
//     CuPy / PyTorch queued on their default streams, and each entry point
//     synchronises before returning, so errors surface as kq::Error at the
//     call that caused them, naming it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/traits.h"
#include "quants/api.h"  // SrcKind

namespace kq::cuda {

struct DeviceInfo {
    bool compiled = false;        // this build contains the CUDA backend
    bool available = false;       // a driver and at least one usable device
    std::string status;           // "ok", or why the backend is unavailable
    std::string archs;            // compiled architectures, e.g. "80-real,90"
    int runtime_version = 0;      // CUDA runtime linked in, e.g. 13000 (0: stub)
    int driver_version = 0;       // highest CUDA version the driver supports (0: no driver)
    int device_count = 0;
    std::string device_name;      // device 0
    int cc_major = 0, cc_minor = 0;
    int sm_count = 0;
    size_t total_memory = 0;      // bytes
};

// Probes the driver once (on first call, not at import); never throws.
const DeviceInfo& info();
inline bool available() { return info().available; }
// Throws kq::Error "<what>: CUDA is not available (<status>)" unless available().
void require(const char* what);

// --- memory ---------------------------------------------------------------------
void* device_alloc(size_t bytes);  // throws kq::Error when out of memory
void device_free(void* p) noexcept;
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);
void copy_device(void* dst, const void* src, size_t bytes);
void synchronize();

// --- quantization ---------------------------------------------------------------
enum class FloatKind { F32, F16 };

// Types with CUDA quantize/dequantize kernels, and with a CUDA matmul.
bool has_quantize(TypeId id);
bool has_matmul(TypeId id);

// As kq::quantize_rows, on the device and byte-identical to it: src holds
// rows x cols values of `kind`, dst receives rows * row_size(t, cols) bytes;
// imatrix: cols weights on the device, or nullptr.
void quantize(const void* src, SrcKind kind, int64_t rows, int64_t cols, const TypeTraits& t, const float* imatrix,
              void* dst);
// As kq::dequantize_rows: F32 output is bit-identical to the reference; F16
// output is that value rounded to nearest even (core/fp16.h).
void dequantize(const void* src, int64_t rows, int64_t cols, const TypeTraits& t, void* dst, FloatKind out);

// y[n, m] = x[n, k] @ W[m, k]^T, x and y float32 (the CPU matmul's contract).
// Vec: int8 dot products (dp4a) against x quantized to 8 bits per 32 values;
// MMA: W dequantized tile by tile to fp16 and multiplied on the tensor cores
// (fp32 accumulation). Auto picks Vec for small n.
enum class MatmulPath { Auto, Vec, MMA };
void matmul(const TypeTraits& t, const void* w, int64_t m, int64_t k, const float* x, int64_t n, float* y,
            MatmulPath path = MatmulPath::Auto);

// --- benchmarks ---------------------------------------------------------------------
// Average seconds per run of `iters` back-to-back runs after one warm-up,
// timed with CUDA events; scratch memory is allocated outside the timed
// region. bench_quantize takes a float32 source and no imatrix.
double bench_copy(void* dst, const void* src, size_t bytes, int iters);
double bench_quantize(const float* src, int64_t rows, int64_t cols, const TypeTraits& t, void* dst, int iters);
double bench_matmul(const TypeTraits& t, const void* w, int64_t m, int64_t k, const float* x, int64_t n, float* y,
                    MatmulPath path, int iters);

// --- activation ops (float32, row-major; semantics of csrc/ops/ops.h) -------------
// y = x / sqrt(mean(x^2) + eps) * w per row of n.
void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps);
struct RopeArgs {
    int n_rot = 0;
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;
    const float* freq_factors = nullptr;  // n_rot/2 divisors on the device, or nullptr
    bool neox = false;                    // pairs (i, i + n_rot/2) instead of (2i, 2i+1)
};
// In place on rows of n_heads * head_dim; row r is at position pos[r] (device).
void rope(float* x, const int32_t* pos, int64_t rows, int n_heads, int head_dim, const RopeArgs& p);
// In-place softmax of each row of n.
void softmax(float* x, int64_t rows, int64_t n);
// Causal grouped-query attention: q [n, n_head*hd], caches k/v [n_past + n,
// row stride kv_stride] holding n_kv heads, out [n, n_head*hd].
void attention(const float* q, const float* k, const float* v, int64_t kv_stride, float* out, int64_t n,
               int64_t n_past, int n_head, int n_kv, int hd);
// g = silu(g) * u over n values.
void swiglu(float* g, const float* u, int64_t n);

}  // namespace kq::cuda
