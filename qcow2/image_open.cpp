// Opening and creating images: feature-bit policy, loading L1 and refcounts,
// dirty-bit repair, and header rewrites.
#include <algorithm>
#include <bit>

#include "qcow2/endian.h"
#include "qcow2/image_impl.h"

namespace zqfs::qcow2 {
namespace {

std::string feature_label(const Header& h, uint8_t type, unsigned bit) {
    for (const auto& f : h.feature_names)
        if (f.type == type && f.bit == bit) return fmt::format("bit {} ({})", bit, f.name);
    return fmt::format("bit {}", bit);
}

}  // namespace

Result<std::unique_ptr<Image>> Image::open(std::unique_ptr<HostFile> file, const OpenOptions& opts) {
    const std::string name = file->name();
    ZQ_ASSIGN(uint64_t file_size, file->size());
    std::vector<std::byte> first(std::min<uint64_t>(file_size, 2u << 20));
    ZQ_TRY(file->read_at(0, first));
    auto parsed = parse_header(first, file_size);
    if (!parsed) return with_context(parsed.error(), name + ": ");
    Header h = std::move(parsed).value();

    const uint64_t known = kIncompatDirty | kIncompatCorrupt | kIncompatExternalData | kIncompatCompressionType |
                           kIncompatExtendedL2 | opts.accepted_incompatible_bits;
    if (uint64_t unknown = h.incompatible_features & ~known) {
        unsigned bit = static_cast<unsigned>(std::countr_zero(unknown));
        return make_error(ENOTSUP, "{}: unsupported incompatible feature {}", name, feature_label(h, 0, bit));
    }
    if (h.incompatible_features & kIncompatExternalData)
        return make_error(ENOTSUP, "{}: images with an external data file are not supported", name);
    if (h.crypt_method != 0) return make_error(ENOTSUP, "{}: encrypted images are not supported", name);
    if (h.find_extension(kExtEncryption)) return make_error(ENOTSUP, "{}: encrypted images are not supported", name);
    if (h.backing_file_offset != 0) {
        std::string backing(reinterpret_cast<const char*>(first.data() + h.backing_file_offset), h.backing_file_size);
        return make_error(ENOTSUP, "{}: images with a backing file are not supported (backing file '{}')", name, backing);
    }
    if (opts.writable) {
        if (h.incompatible_features & kIncompatCorrupt)
            return make_error(EUCLEAN, "{}: image is marked corrupt; open it read-only or repair it with 'qemu-img check -r all'",
                              name);
        if (h.version < 3)
            return make_error(ENOTSUP, "{}: version 2 images are read-only here; upgrade with 'qemu-img amend -o compat=1.1'", name);
        if (h.nb_snapshots > 0)
            return make_error(ENOTSUP, "{}: images with internal snapshots can only be opened read-only", name);
    }
    auto img = std::make_unique<ImageImpl>(std::move(file), std::move(h), opts.writable, opts.metadata_cache_bytes);
    ZQ_TRY(img->load(opts));
    return std::unique_ptr<Image>(std::move(img));
}

Status ImageImpl::load(const OpenOptions& opts) {
    ZQ_ASSIGN(uint64_t file_size, file_->size());
    l1_.assign(header_.l1_size, 0);
    if (header_.l1_size) {
        std::vector<std::byte> raw(uint64_t{header_.l1_size} * 8);
        ZQ_TRY(file_->read_at(header_.l1_table_offset, raw));
        for (size_t i = 0; i < l1_.size(); ++i) {
            uint64_t e = load_be<uint64_t>(raw.data() + i * 8);
            if (e & ~(kOffsetMask | kOflagCopied))
                return make_error(EUCLEAN, "{}: corrupt L1 entry {} ({:#018x})", file_->name(), i, e);
            if (l1_offset(e) % cs_)
                return make_error(EUCLEAN, "{}: L1 entry {} points at unaligned offset {:#x}", file_->name(), i, l1_offset(e));
            if (l1_offset(e) && l1_offset(e) + cs_ > file_size)
                return make_error(EUCLEAN, "{}: L2 table {} at {:#x} lies past the end of the file", file_->name(), i, l1_offset(e));
            l1_[i] = e;
        }
    }
    l1_dirty_.assign((l1_.size() * 8 + slice_size_ - 1) / slice_size_, false);
    if (auto s = refcounts_.load(header_.refcount_table_offset, header_.refcount_table_clusters, file_size); !s)
        return with_context(s.error(), file_->name() + ": ");
    ZQ_TRY(refcounts_.build_free_map(file_size));
    if (!writable_) return {};

    // Autoclear bits name features whose data we would not keep up to date.
    bool rewrite = false;
    if (header_.autoclear_features) {
        header_.autoclear_features = 0;
        rewrite = true;
    }
    if (header_.incompatible_features & kIncompatDirty) {
        std::vector<HostRange> owned;
        if (opts.owned_ranges) {
            ZQ_ASSIGN(owned, opts.owned_ranges(header_));
        }
        ZQ_ASSIGN(CheckReport r, check(RepairMode::all, owned));
        if (r.corruptions > r.corruptions_fixed)
            return make_error(EUCLEAN, "{}: dirty image could not be repaired ({} corruptions)", file_->name(), r.corruptions);
        header_.incompatible_features &= ~kIncompatDirty;
        header_.compatible_features &= ~kCompatLazyRefcounts;
        rewrite = true;
    }
    if (rewrite) {
        std::lock_guard fl(flush_mutex_);
        ZQ_TRY(flush_locked());
        ZQ_TRY(write_header());
        ZQ_TRY(file_->sync());
    }
    return {};
}

Result<std::unique_ptr<Image>> Image::create(std::unique_ptr<HostFile> file, const CreateOptions& opts) {
    const std::string name = file->name();
    if (!std::has_single_bit(opts.cluster_size) || opts.cluster_size < 512 || opts.cluster_size > (2u << 20))
        return make_error(EINVAL, "{}: cluster_size {} must be a power of two between 512 and 2M", name, opts.cluster_size);
    if (!std::has_single_bit(opts.refcount_bits) || opts.refcount_bits > 64)
        return make_error(EINVAL, "{}: refcount_bits {} must be a power of two between 1 and 64", name, opts.refcount_bits);
    if (opts.virtual_size == 0 || opts.virtual_size > (1ull << 56))
        return make_error(EINVAL, "{}: virtual size {} out of range", name, opts.virtual_size);
    ZQ_ASSIGN(uint64_t existing, file->size());
    if (existing != 0) return make_error(EEXIST, "{}: create needs an empty file", name);

    Header h;
    h.version = 3;
    h.cluster_bits = static_cast<uint32_t>(std::countr_zero(opts.cluster_size));
    h.size = (opts.virtual_size + 511) & ~uint64_t{511};
    h.refcount_order = static_cast<uint32_t>(std::countr_zero(opts.refcount_bits));
    h.header_length = 112;
    h.incompatible_features = opts.extra_incompatible_bits;
    h.feature_names = standard_feature_names();
    for (const auto& f : opts.extra_feature_names) h.feature_names.push_back(f);
    h.extensions = opts.extra_extensions;
    const uint64_t cs = opts.cluster_size;
    const uint64_t per_l1 = cs / 8 * cs;
    h.l1_size = static_cast<uint32_t>((h.size + per_l1 - 1) / per_l1);
    h.refcount_table_offset = cs;
    h.refcount_table_clusters = 1;

    auto img = std::make_unique<ImageImpl>(std::move(file), std::move(h), true, opts.metadata_cache_bytes);
    ZQ_TRY(img->init_new());
    return std::unique_ptr<Image>(std::move(img));
}

Status ImageImpl::init_new() {
    // Layout as qemu-img makes it: header, refcount table, first refcount
    // block, L1 table. The allocator places the block and L1 itself.
    refcounts_.init_empty(cs_);
    header_.refcount_table_offset = cs_;
    header_.refcount_table_clusters = 1;
    {
        std::lock_guard lk(meta_);
        ZQ_ASSIGN(uint64_t c, refcounts_.allocate(2));  // header and refcount table
        if (c != 0) return make_error(EIO, "{}: unexpected layout of a new image", file_->name());
        const uint64_t l1_clusters = std::max<uint64_t>(1, (uint64_t{header_.l1_size} * 8 + cs_ - 1) / cs_);
        ZQ_ASSIGN(uint64_t l1c, refcounts_.allocate(l1_clusters));
        header_.l1_table_offset = l1c << cluster_bits_;
        l1_.assign(header_.l1_size, 0);
        l1_dirty_.assign((l1_.size() * 8 + slice_size_ - 1) / slice_size_, false);
        std::vector<std::byte> zeros(l1_clusters * cs_);
        ZQ_TRY(file_->write_at(header_.l1_table_offset, zeros));
    }
    ZQ_TRY(write_header());
    return flush();
}

// header_.refcount_table_* always name a table that is durable on disk:
// flush() updates them only after writing the table (see sync.cpp).
Status ImageImpl::write_header() {
    ZQ_ASSIGN(std::vector<std::byte> bytes, serialize_header(header_, cs_));
    return file_->write_at(0, bytes);
}

Status ImageImpl::update_extension(uint32_t type, std::span<const std::byte> data) {
    if (!writable_) return make_error(EROFS, "{}: image is open read-only", file_->name());
    std::lock_guard fl(flush_mutex_);
    std::lock_guard lk(meta_);
    Header saved = header_;
    auto it = std::find_if(header_.extensions.begin(), header_.extensions.end(), [&](const Extension& e) { return e.type == type; });
    if (it == header_.extensions.end())
        header_.extensions.push_back({type, {data.begin(), data.end()}});
    else
        it->data.assign(data.begin(), data.end());
    if (auto s = write_header(); !s) {
        header_ = std::move(saved);
        return s;
    }
    return file_->sync();
}

Status ImageImpl::close() {
    if (closed_) return {};
    closed_ = true;
    if (!writable_) return {};
    // The first flush may drop refcounts of freed clusters; the second
    // writes those drops, so a cleanly closed image has no leaks.
    Status s = flush();
    if (s) s = flush();
    Status reclaimed = wait_reclaimed();
    reclaimer_.stop();
    if (!s) return s;
    return reclaimed;
}

}  // namespace zqfs::qcow2
