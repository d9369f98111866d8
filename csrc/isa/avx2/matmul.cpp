#include "isa/avx2/matmul.h"
#include "isa/avx2/mm256_common.h"

namespace kq::isa_avx2 {
namespace {

// Eight 32-byte loads per 256 bytes, XORed into four chains.
uint64_t stream_read(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 256) {
        a0 = _mm256_xor_si256(_mm256_xor_si256(a0, load256(b + i)), load256(b + i + 32));
        a1 = _mm256_xor_si256(_mm256_xor_si256(a1, load256(b + i + 64)), load256(b + i + 96));
        a2 = _mm256_xor_si256(_mm256_xor_si256(a2, load256(b + i + 128)), load256(b + i + 160));
        a3 = _mm256_xor_si256(_mm256_xor_si256(a3, load256(b + i + 192)), load256(b + i + 224));
    }
    alignas(32) uint64_t w[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(w),
                       _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3)));
    return w[0] ^ w[1] ^ w[2] ^ w[3];
}

}  // namespace

void register_matmul(KernelSet& ks) {
    ks.stream_read = stream_read;
    register_matmul_float(ks);
    register_matmul_quant(ks);
}

}  // namespace kq::isa_avx2
