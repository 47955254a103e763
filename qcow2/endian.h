// Big- and little-endian integer access on byte buffers. qcow2 metadata is
// big-endian; the seed zoned layout stores write pointers little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace zqfs {

template <class T>
inline T load_be(const std::byte* p) {
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | static_cast<uint8_t>(p[i]));
    return v;
}

template <class T>
inline void store_be(std::byte* p, T v) {
    for (size_t i = sizeof(T); i-- > 0;) {
        p[i] = static_cast<std::byte>(v & 0xff);
        v = static_cast<T>(v >> 8);
    }
}

template <class T>
inline T load_le(const std::byte* p) {
    T v = 0;
    for (size_t i = sizeof(T); i-- > 0;) v = static_cast<T>((v << 8) | static_cast<uint8_t>(p[i]));
    return v;
}

template <class T>
inline void store_le(std::byte* p, T v) {
    for (size_t i = 0; i < sizeof(T); ++i) {
        p[i] = static_cast<std::byte>(v & 0xff);
        v = static_cast<T>(v >> 8);
    }
}

}  // namespace zqfs
