// The CUDA backend's stand-in when kquants is built without CUDA
// (KQUANTS_CUDA=OFF, or AUTO with no CUDA compiler): same interface as
// csrc/cuda/, info() reports "not compiled" and every other entry point
// raises kq::Error, which Python sees as kquants.KQuantsError.
#include <string>

#include "core/error.h"
#include "gpu/cuda.h"

namespace kq::cuda {
namespace {

constexpr const char* kReason = "kquants was built without CUDA (KQUANTS_CUDA=OFF or no CUDA compiler found)";

[[noreturn]] void unavailable(const char* what) {
    throw Error(std::string(what) + ": CUDA is not available (" + kReason + ")");
}

}  // namespace

const DeviceInfo& info() {
    static const DeviceInfo d = [] {
        DeviceInfo i;
        i.status = kReason;
        return i;
    }();
    return d;
}

void require(const char* what) { unavailable(what); }

void* device_alloc(size_t) { unavailable("cuda alloc"); }
void device_free(void*) noexcept {}
void copy_to_device(void*, const void*, size_t) { unavailable("cuda copy"); }
void copy_to_host(void*, const void*, size_t) { unavailable("cuda copy"); }
void copy_device(void*, const void*, size_t) { unavailable("cuda copy"); }
void synchronize() { unavailable("cuda synchronize"); }

bool has_quantize(TypeId) { return false; }
bool has_matmul(TypeId) { return false; }

void quantize(const void*, SrcKind, int64_t, int64_t, const TypeTraits&, const float*, void*) {
    unavailable("quantize (device='cuda')");
}
void dequantize(const void*, int64_t, int64_t, const TypeTraits&, void*, FloatKind) {
    unavailable("dequantize (device='cuda')");
}
void matmul(const TypeTraits&, const void*, int64_t, int64_t, const float*, int64_t, float*, MatmulPath) {
    unavailable("matmul (device='cuda')");
}
double bench_copy(void*, const void*, size_t, int) { unavailable("bench copy (cuda)"); }
double bench_quantize(const float*, int64_t, int64_t, const TypeTraits&, void*, int) {
    unavailable("bench quantize (cuda)");
}
double bench_matmul(const TypeTraits&, const void*, int64_t, int64_t, const float*, int64_t, float*, MatmulPath, int) {
    unavailable("bench matmul (cuda)");
}
void rmsnorm(const float*, const float*, float*, int64_t, int64_t, float) { unavailable("rmsnorm (cuda)"); }
void rope(float*, const int32_t*, int64_t, int, int, const RopeArgs&) { unavailable("rope (cuda)"); }
void softmax(float*, int64_t, int64_t) { unavailable("softmax (cuda)"); }
void attention(const float*, const float*, const float*, int64_t, float*, int64_t, int64_t, int, int, int) {
    unavailable("attention (cuda)");
}
void swiglu(float*, const float*, int64_t) { unavailable("swiglu (cuda)"); }

}  // namespace kq::cuda
