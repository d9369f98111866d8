// Device discovery, memory and error handling of the CUDA backend.
//
// The runtime is linked statically (cmake/cuda.cmake); it loads the driver
// (libcuda.so) on first use. On a machine without a driver or GPU every
// query fails softly: info() records why and available() is false, so
// `import kquants` and the CPU paths never depend on CUDA.
#include <cuda_runtime.h>

#include <functional>
#include <mutex>
#include <string>

#include "cuda/buffer.h"
#include "cuda/common.cuh"
#include "cuda/timing.h"
#include "gpu/cuda.h"

#ifndef KQ_CUDA_ARCHS_STR
#define KQ_CUDA_ARCHS_STR "unknown"
#endif

namespace kq::cuda {

void check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    cudaGetLastError();  // clear non-sticky errors so later calls start clean
    throw Error(std::string(what) + ": CUDA error " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

void check_launch(const char* what) {
    check(cudaGetLastError(), what);
    check(cudaStreamSynchronize(0), what);
}

void check_aligned(const void* p, size_t align, const char* what, const char* arg) {
    if (reinterpret_cast<uintptr_t>(p) % align != 0)
        throw Error(std::string(what) + ": device pointer " + arg + " must be " + std::to_string(align) +
                    "-byte aligned");
}

namespace {

__global__ void probe_kernel(int* out) { *out = 42; }

std::string error_text(cudaError_t e) {
    return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

DeviceInfo probe() {
    DeviceInfo i;
    i.compiled = true;
    i.archs = KQ_CUDA_ARCHS_STR;
    cudaRuntimeGetVersion(&i.runtime_version);
    if (cudaDriverGetVersion(&i.driver_version) != cudaSuccess) i.driver_version = 0;
    const cudaError_t e = cudaGetDeviceCount(&i.device_count);
    if (e != cudaSuccess || i.device_count == 0) {
        cudaGetLastError();
        i.device_count = 0;
        if (i.driver_version == 0)
            i.status = "no CUDA driver found (" + error_text(e) + ")";
        else if (e != cudaSuccess)
            i.status = "no usable CUDA device (" + error_text(e) + ")";
        else
            i.status = "no CUDA device";
        return i;
    }
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess) {
        i.device_name = p.name;
        i.cc_major = p.major;
        i.cc_minor = p.minor;
        i.sm_count = p.multiProcessorCount;
        i.total_memory = p.totalGlobalMem;
    }
    // A kernel must actually run: the build may lack code for this GPU
    // (cudaErrorNoKernelImageForDevice) or the device may be in a bad state.
    int* d = nullptr;
    cudaError_t k = cudaMalloc(&d, sizeof(int));
    if (k == cudaSuccess) {
        probe_kernel<<<1, 1>>>(d);
        k = cudaGetLastError();
        int h = 0;
        if (k == cudaSuccess) k = cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost);
        if (k == cudaSuccess && h != 42) k = cudaErrorUnknown;
        cudaFree(d);
    }
    if (k != cudaSuccess) {
        cudaGetLastError();
        i.status = "CUDA device " + i.device_name + " (sm_" + std::to_string(i.cc_major) + std::to_string(i.cc_minor) +
                   ") cannot run this build's kernels (archs " + i.archs + "): " + error_text(k);
        return i;
    }
    i.available = true;
    i.status = "ok";
    return i;
}

}  // namespace

const DeviceInfo& info() {
    static std::once_flag once;
    static DeviceInfo d;
    std::call_once(once, [] { d = probe(); });
    return d;
}

void require(const char* what) {
    const DeviceInfo& i = info();
    if (!i.available) throw Error(std::string(what) + ": CUDA is not available (" + i.status + ")");
}

void* device_alloc(size_t bytes) {
    require("cuda alloc");
    void* p = nullptr;
    if (bytes == 0) bytes = 1;  // a valid, unique pointer even for empty arrays
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        throw Error("cuda alloc: cannot allocate " + std::to_string(bytes) + " bytes of device memory (" +
                    error_text(e) + ")");
    }
    return p;
}

void device_free(void* p) noexcept {
    if (p) cudaFree(p);
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
    if (bytes) check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cuda copy host->device");
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
    if (bytes) check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cuda copy device->host");
}
void copy_device(void* dst, const void* src, size_t bytes) {
    if (bytes) check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cuda copy device->device");
    check(cudaStreamSynchronize(0), "cuda copy device->device");
}
void synchronize() { check(cudaDeviceSynchronize(), "cuda synchronize"); }

double time_enqueued(const std::function<void()>& enqueue, int iters, const char* what) {
    if (iters < 1) iters = 1;
    enqueue();
    check_launch(what);
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), what);
    check(cudaEventCreate(&stop), what);
    float ms = 0.0f;
    cudaError_t e = cudaEventRecord(start, 0);
    for (int i = 0; i < iters && e == cudaSuccess; ++i) {
        enqueue();
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) e = cudaEventRecord(stop, 0);
    if (e == cudaSuccess) e = cudaEventSynchronize(stop);
    if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, start, stop);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    check(e, what);
    return static_cast<double>(ms) * 1e-3 / iters;
}

double bench_copy(void* dst, const void* src, size_t bytes, int iters) {
    require("bench copy (cuda)");
    return time_enqueued([&] { cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0); }, iters,
                         "bench copy (cuda)");
}

Buffer::Buffer(size_t bytes) : p_(bytes ? device_alloc(bytes) : nullptr) {}
Buffer::~Buffer() { device_free(p_); }

}  // namespace kq::cuda
