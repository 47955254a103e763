#include "qcow2/compress.h"

#include <zlib.h>

namespace zqfs::qcow2 {

Status inflate_cluster(std::span<const std::byte> in, std::span<std::byte> out) {
    z_stream s{};
    if (inflateInit2(&s, -12) != Z_OK) return make_error(ENOMEM, "zlib inflateInit failed");
    s.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
    s.avail_in = static_cast<uInt>(in.size());
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    s.avail_out = static_cast<uInt>(out.size());
    int r = inflate(&s, Z_FINISH);
    inflateEnd(&s);
    // qemu accepts a stream that filled the output even without a final block.
    if ((r != Z_STREAM_END && r != Z_BUF_ERROR) || s.avail_out != 0)
        return make_error(EIO, "compressed cluster is corrupt (inflate returned {})", r);
    return {};
}

Result<std::vector<std::byte>> deflate_cluster(std::span<const std::byte> in) {
    z_stream s{};
    if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return make_error(ENOMEM, "zlib deflateInit failed");
    std::vector<std::byte> out(in.size());
    s.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
    s.avail_in = static_cast<uInt>(in.size());
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    s.avail_out = static_cast<uInt>(out.size());
    int r = deflate(&s, Z_FINISH);
    deflateEnd(&s);
    if (r != Z_STREAM_END) return std::vector<std::byte>{};  // did not fit: store uncompressed
    out.resize(out.size() - s.avail_out);
    return out;
}

}  // namespace zqfs::qcow2
