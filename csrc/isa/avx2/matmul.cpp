#include "isa/avx2/matmul.h"
#include "isa/avx2/mm256_common.h"

namespace kq::isa_avx2 {
namespace {

// 12 streams side by side (the buffer in 12 parts, 64 bytes of each per
// step: two 32-byte loads XORed into its chain), as a mat-vec reads a tile of
// weight rows at once; see the avx512 folder's stream_read for the numbers.
// 12 chains + the loads fit the 16 ymm registers.
constexpr int kStreams = 12;
uint64_t stream_read(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    const size_t part = n / kStreams / 64 * 64;
    __m256i a[kStreams];
    for (int s = 0; s < kStreams; ++s) a[s] = _mm256_setzero_si256();
    for (size_t i = 0; i < part; i += 64)
        for (int s = 0; s < kStreams; ++s)
            a[s] = _mm256_xor_si256(_mm256_xor_si256(a[s], load256(b + s * part + i)), load256(b + s * part + i + 32));
    __m256i x = a[0];
    for (int s = 1; s < kStreams; ++s) x = _mm256_xor_si256(x, a[s]);
    for (size_t i = kStreams * part; i + 32 <= n; i += 32) x = _mm256_xor_si256(x, load256(b + i));
    alignas(32) uint64_t w[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(w), x);
    return w[0] ^ w[1] ^ w[2] ^ w[3];
}

}  // namespace

void register_matmul(KernelSet& ks) {
    ks.stream_read = stream_read;
    register_matmul_float(ks);
    register_matmul_quant(ks);
}

}  // namespace kq::isa_avx2
