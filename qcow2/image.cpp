// The virtual-disk I/O paths: mapping lookups, read, write (with cluster
// allocation and copy of partial clusters), discard/write-zeroes and
// compressed writes. Locking rules are in image_impl.h.
#include <algorithm>
#include <cstring>

#include "qcow2/compress.h"
#include "qcow2/endian.h"
#include "qcow2/image_impl.h"

namespace zqfs::qcow2 {
namespace {

constexpr uint64_t kBatchClusters = 256;  // clusters mapped per lock acquisition
constexpr uint64_t kAllAllocated = 0xffffffffull;
constexpr uint64_t kMaxMappedRead = uint64_t{64} << 20;
constexpr uint64_t kWriteBehindBytes = 256u << 10;

// Contiguous host I/O assembled from per-cluster pieces.
struct Segment {
    uint64_t host;
    std::byte* mem;
    uint64_t len;
};

void add_segment(std::vector<Segment>& segs, uint64_t host, std::byte* mem, uint64_t len) {
    if (!segs.empty()) {
        Segment& b = segs.back();
        if (b.host + b.len == host && b.mem + b.len == mem) {
            b.len += len;
            return;
        }
    }
    segs.push_back({host, mem, len});
}

}  // namespace

// Four fifths of the metadata cache hold L2 slices, the rest refcount slices.
ImageImpl::ImageImpl(std::unique_ptr<HostFile> file, Header header, bool writable, size_t cache_bytes)
    : file_(std::move(file)),
      header_(std::move(header)),
      writable_(writable),
      cluster_bits_(header_.cluster_bits),
      cs_(header_.cluster_size()),
      ext_l2_(header_.extended_l2()),
      l2_entry_size_(ext_l2_ ? 16 : 8),
      l2_entries_(cs_ / l2_entry_size_),
      slice_size_(std::min<uint64_t>(cs_, 4096)),
      clayout_(header_.cluster_bits),
      l2_cache_(*file_, slice_size_, std::max<size_t>(8, cache_bytes / 5 * 4 / slice_size_)),
      rc_cache_(*file_, slice_size_, std::max<size_t>(8, cache_bytes / 5 / slice_size_)),
      refcounts_(*file_, rc_cache_, header_.cluster_bits, header_.refcount_order) {}

ImageImpl::~ImageImpl() { (void)close(); }

ClusterKind ImageImpl::kind(const L2Entry& e) const {
    if (header_.version < 3 && !e.compressed()) return e.host_offset() ? ClusterKind::normal : ClusterKind::unallocated;
    return classify(e, ext_l2_);
}

Result<std::byte*> ImageImpl::l2_slot(uint64_t gc, bool create, uint64_t* slice_off) {
    const uint64_t l1i = gc / l2_entries_;
    if (l1i >= l1_.size()) return make_error(EINVAL, "guest cluster {} beyond the L1 table", gc);
    uint64_t l2off = l1_offset(l1_[l1i]);
    if (l2off == 0) {
        if (!create) return static_cast<std::byte*>(nullptr);
        ZQ_ASSIGN(uint64_t c, refcounts_.allocate(1));
        // A new L2 table must read as zeros before the L1 points to it.
        if (c < refcounts_.zero_frontier()) ZQ_TRY(file_->punch_hole(c << cluster_bits_, cs_));
        l2off = c << cluster_bits_;
        l2_cache_.drop(l2off, cs_);
        l1_[l1i] = l2off | kOflagCopied;
        l1_dirty_[l1i * 8 / slice_size_] = true;
    }
    const uint64_t byte = (gc % l2_entries_) * l2_entry_size_;
    *slice_off = l2off + byte / slice_size_ * slice_size_;
    ZQ_ASSIGN(std::byte * s, l2_cache_.get(*slice_off));
    return s + byte % slice_size_;
}

Result<L2Entry> ImageImpl::lookup(uint64_t gc) {
    uint64_t slice_off;
    ZQ_ASSIGN(std::byte * slot, l2_slot(gc, false, &slice_off));
    L2Entry e;
    if (!slot) return e;
    e.raw = load_be<uint64_t>(slot);
    if (ext_l2_) e.bitmap = load_be<uint64_t>(slot + 8);
    if (!e.compressed() && (e.raw & ~(kOffsetMask | kOflagCopied | kOflagZero)))
        return make_error(EUCLEAN, "{}: corrupt L2 entry {:#018x} for guest cluster {}", file_->name(), e.raw, gc);
    if (!e.compressed() && e.host_offset() % cs_)
        return make_error(EUCLEAN, "{}: L2 entry for guest cluster {} points at unaligned offset {:#x}", file_->name(), gc,
                          e.host_offset());
    return e;
}

void ImageImpl::store(std::byte* slot, uint64_t slice_off, const L2Entry& e) {
    store_be<uint64_t>(slot, e.raw);
    if (ext_l2_) store_be<uint64_t>(slot + 8, e.bitmap);
    l2_cache_.mark_dirty(slice_off);
}

void ImageImpl::defer_free(const L2Entry& old) {
    if (old.compressed()) {
        uint64_t off = clayout_.offset(old.raw);
        uint64_t end = off + clayout_.size(old.raw);
        uint64_t first = off >> cluster_bits_;
        uint64_t last = (end - 1) >> cluster_bits_;
        pending_frees_.push_back({first, last - first + 1});
    } else if (old.host_offset()) {
        pending_frees_.push_back({old.host_offset() >> cluster_bits_, 1});
    }
}

Status ImageImpl::read_piece(const L2Entry& e, uint64_t in_off, std::span<std::byte> out) {
    switch (kind(e)) {
        case ClusterKind::unallocated:
        case ClusterKind::zero_plain:
        case ClusterKind::zero_alloc:
            std::memset(out.data(), 0, out.size());
            return {};
        case ClusterKind::compressed: {
            uint64_t off = clayout_.offset(e.raw);
            uint64_t len = std::min<uint64_t>(clayout_.size(e.raw), 2 * cs_);
            std::vector<std::byte> packed(len), plain(cs_);
            ZQ_TRY(file_->read_at(off, packed));
            if (auto s = inflate_cluster(packed, plain); !s)
                return with_context(s.error(), fmt::format("{}: cluster at {:#x}: ", file_->name(), off));
            std::memcpy(out.data(), plain.data() + in_off, out.size());
            return {};
        }
        case ClusterKind::normal:
            break;
    }
    if (plain_data(e)) return file_->read_at(e.host_offset() + in_off, out);
    // Extended L2: each subcluster is allocated (read), or reads as zeros.
    const uint64_t scs = cs_ / kSubclusters;
    uint64_t pos = in_off, done = 0;
    while (done < out.size()) {
        uint64_t sc = pos / scs;
        uint64_t n = std::min<uint64_t>(out.size() - done, (sc + 1) * scs - pos);
        if (e.bitmap & (1ull << sc))
            ZQ_TRY(file_->read_at(e.host_offset() + pos, out.subspan(done, n)));
        else
            std::memset(out.data() + done, 0, n);
        pos += n;
        done += n;
    }
    return {};
}

// Caller holds io_gate_. Mappings are looked up in batches under meta_;
// fn(entry, in_off, n, done) runs for each cluster's part of the range
// with no lock held (done: bytes of the range before this part).
template <class Fn>
Status ImageImpl::for_each_cluster(uint64_t offset, uint64_t length, Fn&& fn) {
    uint64_t pos = offset;
    const uint64_t end = offset + length;
    std::vector<std::pair<L2Entry, uint64_t>> entries;
    while (pos < end) {
        const uint64_t first = pos >> cluster_bits_;
        const uint64_t last = std::min((end - 1) >> cluster_bits_, first + kBatchClusters - 1);
        entries.clear();
        {
            std::lock_guard lk(meta_);
            for (uint64_t gc = first; gc <= last; ++gc) {
                ZQ_ASSIGN(L2Entry e, lookup(gc));
                entries.emplace_back(e, gc);
            }
        }
        for (auto& [e, gc] : entries) {
            const uint64_t in_off = pos - (gc << cluster_bits_);
            const uint64_t n = std::min<uint64_t>(cs_ - in_off, end - pos);
            ZQ_TRY(fn(e, in_off, n, pos - offset));
            pos += n;
        }
    }
    return {};
}

bool ImageImpl::plain_data(const L2Entry& e) const {
    return kind(e) == ClusterKind::normal && (!ext_l2_ || (e.bitmap & kAllAllocated) == kAllAllocated);
}

Status ImageImpl::read(uint64_t offset, std::span<std::byte> buf) {
    if (offset > header_.size || buf.size() > header_.size - offset)
        return make_error(EINVAL, "read of {} bytes at {} is beyond the virtual disk ({} bytes)", buf.size(), offset, header_.size);
    std::shared_lock gate(io_gate_);
    // Plain data is read in contiguous host runs once the mapping is known.
    std::vector<Segment> segs;
    ZQ_TRY(for_each_cluster(offset, buf.size(), [&](const L2Entry& e, uint64_t in_off, uint64_t n, uint64_t done) -> Status {
        std::span<std::byte> out = buf.subspan(done, n);
        if (!plain_data(e)) return read_piece(e, in_off, out);
        add_segment(segs, e.host_offset() + in_off, out.data(), n);
        return {};
    }));
    for (const auto& s : segs) ZQ_TRY(file_->read_at(s.host, std::span(s.mem, s.len)));
    return {};
}

Status ImageImpl::read_mapped(uint64_t offset, uint64_t length, const MappedConsumer& consume) {
    if (offset > header_.size || length > header_.size - offset)
        return make_error(EINVAL, "read of {} bytes at {} is beyond the virtual disk ({} bytes)", length, offset, header_.size);
    if (length > kMaxMappedRead)
        return make_error(EINVAL, "mapped read of {} bytes is larger than {} bytes", length, kMaxMappedRead);
    // Zeros for unallocated and zero clusters: one cluster at most per piece.
    static const std::byte kZeros[size_t{2} << 20] = {};
    const int fd = file_->fd();
    std::shared_lock gate(io_gate_);  // until consume returns
    // A cluster written only in part may end past the host file's end
    // (the rest reads as zeros); a descriptor range must not, or the
    // consumer would get short data. The file only grows while open.
    uint64_t host_size = 0;
    if (fd >= 0) {
        ZQ_ASSIGN(host_size, file_->size());
    }
    std::vector<MappedPiece> pieces;
    std::vector<std::unique_ptr<std::byte[]>> owned;  // decoded pieces
    auto add = [&](MappedPiece p) {
        if (!pieces.empty()) {
            MappedPiece& b = pieces.back();
            if (p.fd >= 0 && b.fd == p.fd && b.host_offset + b.length == p.host_offset) {
                b.length += p.length;
                return;
            }
            if (p.fd < 0 && b.fd < 0 && b.mem + b.length == p.mem) {
                b.length += p.length;
                return;
            }
            if (p.mem == kZeros && b.mem == kZeros && b.length + p.length <= sizeof kZeros) {
                b.length += p.length;
                return;
            }
        }
        pieces.push_back(p);
    };
    ZQ_TRY(for_each_cluster(offset, length, [&](const L2Entry& e, uint64_t in_off, uint64_t n, uint64_t) -> Status {
        const ClusterKind k = kind(e);
        if (plain_data(e) && fd >= 0) {
            const uint64_t host = e.host_offset() + in_off;
            const uint64_t in_file = host >= host_size ? 0 : std::min(n, host_size - host);
            if (in_file) add({in_file, fd, host, nullptr});
            if (in_file < n) add({n - in_file, -1, 0, kZeros});
        } else if (k != ClusterKind::normal && k != ClusterKind::compressed) {
            add({n, -1, 0, kZeros});
        } else {  // decoded, or no descriptor to hand out
            owned.emplace_back(new std::byte[n]);
            ZQ_TRY(read_piece(e, in_off, std::span(owned.back().get(), n)));
            add({n, -1, 0, owned.back().get()});
        }
        return {};
    }));
    return consume(pieces);
}

Status ImageImpl::write(uint64_t offset, std::span<const std::byte> buf) {
    if (!writable_) return make_error(EROFS, "{}: image is open read-only", file_->name());
    if (offset > header_.size || buf.size() > header_.size - offset)
        return make_error(EINVAL, "write of {} bytes at {} is beyond the virtual disk ({} bytes)", buf.size(), offset, header_.size);
    struct Piece {
        uint64_t gc, in_off, len;
        const std::byte* src;
        L2Entry old;
        bool alloc;
        uint64_t host;         // host offset of the cluster written
        bool host_is_zero;     // new cluster known to read as zeros
        std::vector<std::byte> merged;  // full-cluster buffer for partial writes to new clusters
    };
    {
        std::shared_lock gate(io_gate_);
        uint64_t pos = offset, done = 0;
        while (done < buf.size()) {
            const uint64_t first = pos >> cluster_bits_;
            const uint64_t last = std::min((offset + buf.size() - 1) >> cluster_bits_, first + kBatchClusters - 1);
            std::vector<Piece> pieces;
            uint64_t to_alloc = 0;
            {
                std::unique_lock lk(meta_);
                alloc_cv_.wait(lk, [&] {
                    for (uint64_t gc = first; gc <= last; ++gc)
                        if (allocating_.count(gc)) return false;
                    return true;
                });
                uint64_t p = pos, d = done;
                for (uint64_t gc = first; gc <= last; ++gc) {
                    Piece pc{};
                    pc.gc = gc;
                    pc.in_off = p - (gc << cluster_bits_);
                    pc.len = std::min<uint64_t>(cs_ - pc.in_off, buf.size() - d);
                    pc.src = buf.data() + d;
                    ZQ_ASSIGN(pc.old, lookup(gc));
                    bool in_place = plain_data(pc.old) && (pc.old.raw & kOflagCopied);
                    pc.alloc = !in_place;
                    pc.host = pc.old.host_offset();
                    to_alloc += pc.alloc;
                    p += pc.len;
                    d += pc.len;
                    pieces.push_back(std::move(pc));
                }
                if (to_alloc) {
                    ZQ_ASSIGN(uint64_t c, refcounts_.allocate(to_alloc));
                    bool zero = c >= refcounts_.zero_frontier();
                    for (auto& pc : pieces) {
                        if (!pc.alloc) continue;
                        pc.host = c++ << cluster_bits_;
                        pc.host_is_zero = zero;
                        allocating_.insert(pc.gc);
                    }
                }
            }
            // Data I/O, no lock held. Partial writes into new clusters carry
            // the old contents (or zeros) for the rest of the cluster.
            Status io;
            std::vector<Segment> segs;
            for (auto& pc : pieces) {
                if (pc.alloc && pc.len < cs_) {
                    bool old_is_zero = kind(pc.old) != ClusterKind::normal && kind(pc.old) != ClusterKind::compressed;
                    if (old_is_zero && pc.host_is_zero) {
                        add_segment(segs, pc.host + pc.in_off, const_cast<std::byte*>(pc.src), pc.len);
                        continue;
                    }
                    pc.merged.resize(cs_);
                    if (auto s = read_piece(pc.old, 0, pc.merged); !s) {
                        io = s;
                        break;
                    }
                    std::memcpy(pc.merged.data() + pc.in_off, pc.src, pc.len);
                    add_segment(segs, pc.host, pc.merged.data(), cs_);
                } else {
                    add_segment(segs, pc.host + pc.in_off, const_cast<std::byte*>(pc.src), pc.len);
                }
            }
            if (io.ok())
                for (const auto& s : segs) {
                    if (io = file_->write_at(s.host, std::span<const std::byte>(s.mem, s.len)); !io) break;
                    // Large data writes: have the host start writing them
                    // out now, so a later flush finds little left to do.
                    if (s.len >= kWriteBehindBytes) file_->start_writeback(s.host, s.len);
                }
            {
                std::lock_guard lk(meta_);
                for (auto& pc : pieces) {
                    if (!pc.alloc) continue;
                    allocating_.erase(pc.gc);
                    L2Entry ne;
                    ne.raw = pc.host | kOflagCopied;
                    ne.bitmap = ext_l2_ ? kAllAllocated : 0;
                    uint64_t slice_off;
                    Result<std::byte*> slot = io.ok() ? l2_slot(pc.gc, true, &slice_off) : Result<std::byte*>(io.error());
                    if (!slot) {
                        io = slot.error();
                        // Never linked: the cluster goes back with the next flush.
                        pending_frees_.push_back({pc.host >> cluster_bits_, 1});
                        continue;
                    }
                    store(*slot, slice_off, ne);
                    defer_free(pc.old);
                }
                alloc_cv_.notify_all();
            }
            if (!io) return io;
            for (auto& pc : pieces) {
                pos += pc.len;
                done += pc.len;
            }
        }
    }
    return flush_if_cache_full();
}

Status ImageImpl::unmap(uint64_t offset, uint64_t length, bool as_zero) {
    if (!writable_) return make_error(EROFS, "{}: image is open read-only", file_->name());
    if (offset > header_.size || length > header_.size - offset)
        return make_error(EINVAL, "range of {} bytes at {} is beyond the virtual disk", length, offset);
    if (length == 0) return {};
    const uint64_t end = offset + length;
    // Whole clusters are unmapped; the disk's last cluster may be partial
    // and still counts as whole. Partial clusters at the edges are zeroed.
    const uint64_t a = (offset + cs_ - 1) & ~(cs_ - 1);
    const uint64_t b = end == header_.size ? end : end & ~(cs_ - 1);
    std::vector<std::byte> zeros;
    auto zero_edge = [&](uint64_t from, uint64_t to) -> Status {
        if (from >= to) return {};
        L2Entry e;
        {
            std::lock_guard lk(meta_);
            ZQ_ASSIGN(e, lookup(from >> cluster_bits_));
        }
        ClusterKind k = kind(e);
        if (k != ClusterKind::normal && k != ClusterKind::compressed) return {};  // already reads as zeros
        zeros.assign(to - from, std::byte{0});
        return write(from, zeros);
    };
    if (a > b) return zero_edge(offset, end);  // inside one cluster
    ZQ_TRY(zero_edge(offset, a));
    ZQ_TRY(zero_edge(b, end));
    const uint64_t head_end = a, tail_start = b;
    {
        std::shared_lock gate(io_gate_);
        std::unique_lock lk(meta_);
        for (uint64_t gc = head_end >> cluster_bits_; (gc << cluster_bits_) < tail_start; ++gc) {
            alloc_cv_.wait(lk, [&] { return !allocating_.count(gc); });
            uint64_t slice_off;
            ZQ_ASSIGN(std::byte * slot, l2_slot(gc, false, &slice_off));
            if (!slot) {
                // No L2 table: the whole table's range is unallocated.
                gc = (gc / l2_entries_ + 1) * l2_entries_ - 1;
                continue;
            }
            L2Entry old;
            ZQ_ASSIGN(old, lookup(gc));
            L2Entry ne;
            if (as_zero && header_.version >= 3) {
                if (ext_l2_)
                    ne.bitmap = kAllAllocated << 32;
                else
                    ne.raw = kOflagZero;
            }
            if (ne.raw == old.raw && ne.bitmap == old.bitmap) continue;
            store(slot, slice_off, ne);
            defer_free(old);
        }
    }
    return flush_if_cache_full();
}

Status ImageImpl::discard(uint64_t offset, uint64_t length) { return unmap(offset, length, false); }
Status ImageImpl::write_zeroes(uint64_t offset, uint64_t length) { return unmap(offset, length, true); }

Status ImageImpl::write_compressed(uint64_t offset, std::span<const std::byte> cluster) {
    if (!writable_) return make_error(EROFS, "{}: image is open read-only", file_->name());
    if (offset % cs_ != 0 || offset >= header_.size || cluster.size() != std::min<uint64_t>(cs_, header_.size - offset))
        return make_error(EINVAL, "compressed writes take one whole cluster at a cluster-aligned offset");
    std::vector<std::byte> full(cs_);
    std::memcpy(full.data(), cluster.data(), cluster.size());
    ZQ_ASSIGN(std::vector<std::byte> packed, deflate_cluster(full));
    if (packed.empty() || packed.size() >= cs_ - 512) return write(offset, cluster);
    const uint64_t gc = offset >> cluster_bits_;
    std::shared_lock gate(io_gate_);
    uint64_t host;
    L2Entry old;
    {
        std::unique_lock lk(meta_);
        alloc_cv_.wait(lk, [&] { return !allocating_.count(gc); });
        ZQ_ASSIGN(old, lookup(gc));
        ZQ_ASSIGN(host, allocate_compressed(packed.size()));
        allocating_.insert(gc);
    }
    Status io = file_->write_at(host, packed);
    {
        std::lock_guard lk(meta_);
        allocating_.erase(gc);
        alloc_cv_.notify_all();
        uint64_t slice_off;
        Result<std::byte*> slot = io.ok() ? l2_slot(gc, true, &slice_off) : Result<std::byte*>(io.error());
        L2Entry ne;
        ne.raw = clayout_.encode(host, packed.size());
        if (!slot) {
            defer_free(ne);  // never linked: its clusters go back with the next flush
            return slot.error();
        }
        store(*slot, slice_off, ne);
        defer_free(old);
    }
    gate.unlock();
    return flush_if_cache_full();
}

Result<std::vector<Extent>> ImageImpl::allocation(uint64_t offset, uint64_t length) {
    if (offset > header_.size || length > header_.size - offset)
        return make_error(EINVAL, "range of {} bytes at {} is beyond the virtual disk", length, offset);
    std::vector<Extent> out;
    auto add = [&](uint64_t off, uint64_t len, bool data) {
        if (len == 0) return;
        if (!out.empty() && out.back().data == data && out.back().offset + out.back().length == off)
            out.back().length += len;
        else
            out.push_back({off, len, data});
    };
    const uint64_t end = offset + length;
    const uint64_t per_table = l2_entries_ << cluster_bits_;
    std::lock_guard lk(meta_);
    for (uint64_t pos = offset; pos < end;) {
        const uint64_t gc = pos >> cluster_bits_;
        if (l1_offset(l1_[gc / l2_entries_]) == 0) {
            // No L2 table: its whole range reads as zeros.
            uint64_t next = std::min(end, (pos / per_table + 1) * per_table);
            add(pos, next - pos, false);
            pos = next;
            continue;
        }
        ZQ_ASSIGN(L2Entry e, lookup(gc));
        ClusterKind k = kind(e);
        uint64_t next = std::min(end, (gc + 1) << cluster_bits_);
        add(pos, next - pos, k == ClusterKind::normal || k == ClusterKind::compressed);
        pos = next;
    }
    return out;
}

Result<uint64_t> ImageImpl::allocate_compressed(uint64_t bytes) {
    if (compressed_tail_ % cs_ != 0 && bytes <= cs_ - compressed_tail_ % cs_) {
        uint64_t c = compressed_tail_ >> cluster_bits_;
        ZQ_ASSIGN(uint64_t rc, refcounts_.get(c));
        if (rc > 0 && rc < refcounts_.max_refcount()) {
            ZQ_TRY(refcounts_.set(c, rc + 1));
            uint64_t host = compressed_tail_;
            compressed_tail_ += bytes;
            return host;
        }
    }
    const uint64_t n = (bytes + cs_ - 1) / cs_;
    ZQ_ASSIGN(uint64_t c, refcounts_.allocate(n));
    compressed_tail_ = (c << cluster_bits_) + bytes;
    return c << cluster_bits_;
}

Result<uint64_t> ImageImpl::allocate_clusters(uint64_t count) {
    if (!writable_) return make_error(EROFS, "{}: image is open read-only", file_->name());
    std::lock_guard lk(meta_);
    ZQ_ASSIGN(uint64_t c, refcounts_.allocate(count));
    if (c < refcounts_.zero_frontier()) ZQ_TRY(file_->punch_hole(c << cluster_bits_, count << cluster_bits_));
    return c << cluster_bits_;
}

Status ImageImpl::flush_if_cache_full() {
    bool full;
    {
        std::lock_guard lk(meta_);
        bool l2_full = l2_cache_.trim();  // trim both caches, then decide
        bool rc_full = rc_cache_.trim();
        full = l2_full || rc_full;
    }
    return full ? flush() : Status{};
}

Result<ImageStats> ImageImpl::stats() {
    // Report settled figures: space being reclaimed counts as reclaimed.
    ZQ_TRY(wait_reclaimed());
    ImageStats s;
    ZQ_ASSIGN(s.host_file_size, file_->size());
    ZQ_ASSIGN(s.host_allocated_bytes, file_->allocated_bytes());
    return s;
}

}  // namespace zqfs::qcow2
