#include "gguf/format.h"

#include <cstdio>

namespace kq::gguf {

const ValueTypeInfo kValueTypes[] = {
    //  id                    name       size  min  numpy
    {ValueType::UINT8,   "UINT8",   1, 1, "<u1"},
    {ValueType::INT8,    "INT8",    1, 1, "<i1"},
    {ValueType::UINT16,  "UINT16",  2, 2, "<u2"},
    {ValueType::INT16,   "INT16",   2, 2, "<i2"},
    {ValueType::UINT32,  "UINT32",  4, 4, "<u4"},
    {ValueType::INT32,   "INT32",   4, 4, "<i4"},
    {ValueType::FLOAT32, "FLOAT32", 4, 4, "<f4"},
    // A bool is one byte; 0 is false, anything else true (as ggml reads it).
    {ValueType::BOOL,    "BOOL",    1, 1, "|b1"},
    // length u64 + bytes
    {ValueType::STRING,  "STRING",  0, 8, ""},
    // element type u32 + count u64 + elements
    {ValueType::ARRAY,   "ARRAY",   0, 12, ""},
    {ValueType::UINT64,  "UINT64",  8, 8, "<u8"},
    {ValueType::INT64,   "INT64",   8, 8, "<i8"},
    {ValueType::FLOAT64, "FLOAT64", 8, 8, "<f8"},
};
const size_t kNumValueTypes = sizeof(kValueTypes) / sizeof(kValueTypes[0]);

const ValueTypeInfo* find_value_type(uint32_t id) {
    // The table is in id order with no gaps.
    return id < kNumValueTypes ? &kValueTypes[id] : nullptr;
}

const ValueTypeInfo& value_type_info(ValueType t) { return kValueTypes[static_cast<uint32_t>(t)]; }

bool is_valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        const unsigned c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        // Sequence length from the lead byte, and the allowed range of the
        // second byte (excludes overlongs, UTF-16 surrogates and > U+10FFFF).
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return false;
        }
        if (n - i < len) return false;
        if (p[i + 1] < lo || p[i + 1] > hi) return false;
        for (size_t k = 2; k < len; ++k)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
        i += len;
    }
    return true;
}

std::string quote(std::string_view s, size_t max) {
    // Messages become Python str: keep them valid UTF-8. A valid string is
    // cut on a character boundary; an invalid one has its non-ASCII bytes
    // escaped as well as its control bytes.
    const bool utf8 = is_valid_utf8(s);
    size_t n = s.size() < max ? s.size() : max;
    if (utf8)
        while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    std::string out = "'";
    for (size_t i = 0; i < n; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F || c == '\'' || c == '\\' || (!utf8 && c >= 0x80)) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += "'";
    if (n < s.size()) out += "... (" + std::to_string(s.size()) + " bytes)";
    return out;
}

}  // namespace kq::gguf
