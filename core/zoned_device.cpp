// ZonedDevice over a qcow2 image: the I/O paths and zone operations.
//
// Locking (always taken in this order, never the other way round):
//   1. zone lock   — one of a fixed set of stripes, chosen by zone index; held
//                    across a sequential write or a zone operation, so writes
//                    to one zone are ordered and reset/finish wait for them.
//                    reset_all takes every stripe, in index order.
//   2. persist_mu_ — serialises everything that writes the durable WP table:
//                    flush() and the reset/finish persistence. Without it a
//                    flush snapshot taken before a reset could re-persist the
//                    old WP after the reset made it durable.
//   3. state_mu_   — guards ZoneState (conditions, WPs, limits). Held only for
//                    bookkeeping, never during I/O.
//
// Durability order (SPEC section 5), written down here only:
//   flush():  snapshot the WPs changed since the last flush (state_mu_) →
//             image flush (data, refcounts, L2, L1 durable) → record the
//             snapshot in the WP table → write its dirty sectors → sync.
//             The snapshot precedes the image flush, so every WP persisted
//             covers only data that flush made durable.
//   reset:    persist WP = start and sync FIRST, then discard the zone and
//             flush the image: no durable WP ever covers old data.
//   finish:   flush the image (data below the old WP) FIRST, then persist
//             WP = start + capacity.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "core/write_pointer_table.h"
#include "core/zone_geometry.h"
#include "core/zone_json.h"
#include "core/zone_state.h"
#include "core/zoned_device.h"
#include "core/zoned_extension.h"

namespace zqfs::core {
namespace {

constexpr uint32_t kMaxZoneStripes = 4096;

Result<std::vector<qcow2::HostRange>> owned_ranges_of(const qcow2::Header& h) {
    std::vector<qcow2::HostRange> out;
    const qcow2::Extension* ext = h.find_extension(kZonedExtensionType);
    if (!ext) return out;
    ZQ_ASSIGN(DecodedExtension d, decode_zoned_extension(ext->data));
    out.push_back({d.config.zonedmeta_offset, zonedmeta_cluster_bytes(d.config, h.cluster_size())});
    return out;
}

class Device final : public ZonedDevice {
public:
    Device(std::string path, std::unique_ptr<qcow2::Image> image, ZonedConfig cfg, WritePointerTable wpt,
           const DeviceOpenOptions& opts)
        : path_(std::move(path)),
          image_(std::move(image)),
          cfg_(cfg),
          geo_(image_->virtual_size(), cfg),
          cluster_size_(image_->cluster_size()),
          writable_(opts.writable),
          nr_stripes_(std::max<uint32_t>(1, std::min(cfg.nr_zones, kMaxZoneStripes))),
          zone_locks_(new std::mutex[nr_stripes_]),
          state_(geo_, cfg.max_open_zones, cfg.max_active_zones),
          wpt_(std::move(wpt)) {
        for (uint32_t z = cfg.conventional_zones; z < cfg.nr_zones; ++z) state_.load(z, wpt_.wp(z));
        if (writable_ && opts.commit_seconds > 0)
            commit_thread_ = std::thread([this, s = opts.commit_seconds] { commit_loop(s); });
    }

    ~Device() override { (void)close(); }

    const ZonedConfig& config() const override { return cfg_; }
    uint64_t virtual_size() const override { return geo_.virtual_size(); }
    uint32_t nr_zones() const override { return cfg_.nr_zones; }
    uint32_t cluster_size() const override { return cluster_size_; }
    bool writable() const override { return writable_; }

    ZoneInfo zone(uint32_t index) const override {
        std::lock_guard g(state_mu_);
        return state_.info(std::min(index, cfg_.nr_zones - 1));
    }

    DeviceCounts counts() const override {
        std::lock_guard g(state_mu_);
        return state_.counts();
    }

    Status read(uint64_t offset, std::span<std::byte> buf) override {
        ZQ_TRY(check_read(offset, buf.size()));
        if (buf.empty()) return {};
        return image_->read(offset, buf);
    }

    Status read_mapped(uint64_t offset, uint64_t length, const qcow2::MappedConsumer& consume) override {
        ZQ_TRY(check_read(offset, length));
        if (length == 0) return consume({});
        return image_->read_mapped(offset, length, consume);
    }

    Status write(uint32_t zone, uint64_t offset, std::span<const std::byte> data) override {
        ZQ_TRY(check_writable(zone));
        if (geo_.conventional(zone)) {
            {
                std::lock_guard g(state_mu_);
                ZQ_TRY(state_.check_conventional_write(zone, offset, data.size()));
            }
            if (data.empty()) return {};
            ZQ_TRY(image_->write(offset, data));
            mark_dirty();
            return {};
        }
        std::lock_guard zl(zone_lock(zone));
        return write_locked(zone, offset, data);
    }

    Result<uint64_t> append(uint32_t zone, std::span<const std::byte> data) override {
        ZQ_TRY(check_writable(zone));
        if (geo_.conventional(zone))
            return make_error(EINVAL, "zone {} is conventional: zone append needs a sequential zone", zone);
        if (cfg_.layout == Layout::seed && cfg_.max_append_bytes != 0 && data.size() > cfg_.max_append_bytes)
            return make_error(EINVAL, "append of {} bytes to zone {} exceeds max_append_bytes {}", data.size(), zone,
                              cfg_.max_append_bytes);
        std::lock_guard zl(zone_lock(zone));
        uint64_t wp;
        {
            std::lock_guard g(state_mu_);
            wp = state_.info(zone).wp;
        }
        ZQ_TRY(write_locked(zone, wp, data));
        return wp;
    }

    Status open_zone(uint32_t zone) override {
        ZQ_TRY(check_writable(zone));
        std::lock_guard zl(zone_lock(zone));
        std::lock_guard g(state_mu_);
        return state_.open(zone);
    }

    Status close_zone(uint32_t zone) override {
        ZQ_TRY(check_writable(zone));
        std::lock_guard zl(zone_lock(zone));
        std::lock_guard g(state_mu_);
        return state_.close(zone);
    }

    Status finish_zone(uint32_t zone) override {
        ZQ_TRY(check_writable(zone));
        std::lock_guard zl(zone_lock(zone));
        {
            std::lock_guard g(state_mu_);
            ZQ_TRY(state_.check_finish(zone));
            if (state_.info(zone).cond == ZoneCond::full) return {};
        }
        std::lock_guard p(persist_mu_);
        // Data below the old WP must be durable before a WP covering it is.
        ZQ_TRY(image_->flush());
        {
            std::lock_guard g(state_mu_);
            state_.apply_finish(zone);
        }
        mark_dirty();
        wpt_.set(zone, geo_.capacity_end(zone));
        return wpt_.persist(image_->file());
    }

    Status reset_zone(uint32_t zone) override {
        ZQ_TRY(check_writable(zone));
        std::lock_guard zl(zone_lock(zone));
        bool was_empty;
        {
            std::lock_guard g(state_mu_);
            ZQ_TRY(state_.check_reset(zone));
            was_empty = state_.info(zone).cond == ZoneCond::empty;
        }
        if (was_empty) {
            // Nothing below the WP; still drop anything a crash left past it.
            ZQ_TRY(image_->discard(geo_.start(zone), geo_.len(zone)));
            mark_dirty();
            return {};
        }
        {
            std::lock_guard p(persist_mu_);
            {
                std::lock_guard g(state_mu_);
                state_.apply_reset(zone);
            }
            mark_dirty();
            wpt_.set(zone, geo_.start(zone));
            ZQ_TRY(wpt_.persist(image_->file()));
        }
        ZQ_TRY(image_->discard(geo_.start(zone), geo_.len(zone)));
        return image_->flush();
    }

    Status reset_all() override {
        ZQ_TRY(check_open());
        if (!writable_) return make_error(EROFS, "{}: device is read-only", path_);
        std::vector<std::unique_lock<std::mutex>> locks;
        locks.reserve(nr_stripes_);
        for (uint32_t i = 0; i < nr_stripes_; ++i) locks.emplace_back(zone_locks_[i]);
        std::vector<uint32_t> reset;
        {
            std::lock_guard p(persist_mu_);
            {
                std::lock_guard g(state_mu_);
                for (uint32_t z = cfg_.conventional_zones; z < cfg_.nr_zones; ++z) {
                    ZoneCond c = state_.info(z).cond;
                    if (c == ZoneCond::empty || c == ZoneCond::read_only || c == ZoneCond::offline) continue;
                    state_.apply_reset(z);
                    reset.push_back(z);
                }
            }
            if (reset.empty()) return {};
            mark_dirty();
            for (uint32_t z : reset) wpt_.set(z, geo_.start(z));
            ZQ_TRY(wpt_.persist(image_->file()));
        }
        for (uint32_t z : reset) ZQ_TRY(image_->discard(geo_.start(z), geo_.len(z)));
        return image_->flush();
    }

    Status set_zone_condition(uint32_t zone, ZoneCond cond) override {
        ZQ_TRY(check_open());
        if (zone >= cfg_.nr_zones) return make_error(EINVAL, "zone {} does not exist ({} zones)", zone, cfg_.nr_zones);
        std::lock_guard zl(zone_lock(zone));
        std::lock_guard g(state_mu_);
        return state_.set_condition(zone, cond);
    }

    Status flush() override {
        if (!writable_ || closed_) return {};
        std::lock_guard p(persist_mu_);
        return flush_locked();
    }

    Status close() override {
        std::lock_guard c(close_mu_);
        if (closed_) return {};
        {
            std::lock_guard l(commit_mu_);
            stopping_ = true;
        }
        commit_cv_.notify_all();
        if (commit_thread_.joinable()) commit_thread_.join();
        Status s = flush();
        closed_ = true;
        Status c2 = image_->close();
        image_.reset();  // releases the host file and its lock
        if (!s) return s;
        return c2;
    }

    nlohmann::ordered_json zone_json(uint32_t zone) const override { return zone_info_json(this->zone(zone)); }

    nlohmann::ordered_json device_json() const override {
        return device_info_json(cfg_, virtual_size(), cluster_size(), counts());
    }

    Result<qcow2::CheckReport> check(qcow2::RepairMode mode) override {
        ZQ_TRY(check_open());
        if (writable_) ZQ_TRY(flush());
        std::vector<qcow2::HostRange> owned{
            {cfg_.zonedmeta_offset, zonedmeta_cluster_bytes(cfg_, cluster_size_)}};
        ZQ_ASSIGN(qcow2::CheckReport report, image_->check(mode, owned));
        std::lock_guard p(persist_mu_);
        std::vector<std::string> problems;
        ZQ_ASSIGN(WritePointerTable on_disk,
                  WritePointerTable::load(image_->file(), cfg_.layout, geo_, cfg_.zonedmeta_offset, &problems));
        for (const std::string& m : problems) report.messages.push_back("ERROR write-pointer table: " + m);
        report.corruptions += problems.size();
        if (!problems.empty() && mode == qcow2::RepairMode::all && writable_) {
            // Invalid entries were loaded as empty zones: write that back.
            ZQ_TRY(on_disk.write_all(image_->file(), zonedmeta_cluster_bytes(cfg_, cluster_size_)));
            report.corruptions_fixed += problems.size();
            wpt_ = std::move(on_disk);
        }
        return report;
    }

    Result<std::vector<qcow2::Extent>> allocation(uint64_t offset, uint64_t length) override {
        ZQ_TRY(check_open());
        return image_->allocation(offset, length);
    }

    Result<qcow2::ImageStats> stats() override {
        ZQ_TRY(check_open());
        return image_->stats();
    }

private:
    std::mutex& zone_lock(uint32_t zone) { return zone_locks_[zone % nr_stripes_]; }

    Status check_open() const {
        if (closed_) return make_error(EBADF, "{}: device is closed", path_);
        return {};
    }

    // Range inside the device, every zone it touches readable.
    Status check_read(uint64_t offset, uint64_t length) {
        ZQ_TRY(check_open());
        if (offset > virtual_size() || length > virtual_size() - offset)
            return make_error(EINVAL, "read of {} bytes at {} goes past the end of the device ({})", length,
                              offset, virtual_size());
        if (length == 0) return {};
        std::lock_guard g(state_mu_);
        for (uint32_t z = geo_.zone_of(offset); z <= geo_.zone_of(offset + length - 1); ++z)
            ZQ_TRY(state_.check_readable(z));
        return {};
    }

    Status check_writable(uint32_t zone) const {
        ZQ_TRY(check_open());
        if (!writable_) return make_error(EROFS, "{}: device is read-only", path_);
        if (zone >= cfg_.nr_zones) return make_error(EINVAL, "zone {} does not exist ({} zones)", zone, cfg_.nr_zones);
        return {};
    }

    void mark_dirty() { dirty_.store(true, std::memory_order_release); }

    // Caller holds the zone's lock.
    Status write_locked(uint32_t zone, uint64_t offset, std::span<const std::byte> data) {
        {
            std::lock_guard g(state_mu_);
            if (data.empty()) {
                ZoneInfo i = state_.info(zone);
                if (offset != i.wp)
                    return make_error(EINVAL, "write at {} is not at the write pointer {} of zone {}", offset, i.wp,
                                      zone);
                return {};
            }
            ZQ_TRY(state_.begin_write(zone, offset, data.size()));
        }
        Status s = image_->write(offset, data);
        {
            std::lock_guard g(state_mu_);
            state_.end_write(zone, offset + data.size(), s.ok());
        }
        if (s) mark_dirty();
        return s;
    }

    // Caller holds persist_mu_.
    Status flush_locked() {
        // Nothing acknowledged since the last flush: nothing to make durable.
        // (A write sets dirty_ before it returns to its caller.)
        if (!dirty_.exchange(false, std::memory_order_acq_rel) && !wpt_.dirty()) return {};
        std::vector<std::pair<uint32_t, uint64_t>> snapshot;
        {
            std::lock_guard g(state_mu_);
            snapshot = state_.take_dirty();
        }
        Status s = image_->flush();
        if (!s) {
            std::lock_guard g(state_mu_);
            for (auto& [z, wp] : snapshot) state_.mark_dirty(z);
            mark_dirty();
            return s;
        }
        for (auto& [z, wp] : snapshot) wpt_.set(z, wp);
        s = wpt_.persist(image_->file());
        if (!s) mark_dirty();
        return s;
    }

    void commit_loop(unsigned seconds) {
        std::unique_lock l(commit_mu_);
        while (!stopping_) {
            commit_cv_.wait_for(l, std::chrono::seconds(seconds));
            if (stopping_) break;
            if (!dirty_.load(std::memory_order_acquire)) continue;
            l.unlock();
            (void)flush();  // errors surface again on the next explicit flush
            l.lock();
        }
    }

    const std::string path_;
    std::unique_ptr<qcow2::Image> image_;
    ZonedConfig cfg_;
    ZoneGeometry geo_;
    const uint32_t cluster_size_;
    const bool writable_;
    const uint32_t nr_stripes_;
    std::unique_ptr<std::mutex[]> zone_locks_;
    std::mutex persist_mu_;
    mutable std::mutex state_mu_;
    ZoneState state_;        // guarded by state_mu_
    WritePointerTable wpt_;  // guarded by persist_mu_
    std::atomic<bool> dirty_{false};
    std::atomic<bool> closed_{false};
    std::mutex close_mu_;
    std::mutex commit_mu_;
    std::condition_variable commit_cv_;
    bool stopping_ = false;  // guarded by commit_mu_
    std::thread commit_thread_;
};

}  // namespace

Result<std::unique_ptr<ZonedDevice>> ZonedDevice::open(const std::string& path, const DeviceOpenOptions& opts) {
    ZQ_ASSIGN(auto file, qcow2::open_host_file(
                             path, opts.writable ? qcow2::OpenAccess::read_write : qcow2::OpenAccess::read_only));
    return open(std::move(file), opts);
}

Result<std::unique_ptr<ZonedDevice>> ZonedDevice::open(std::unique_ptr<qcow2::HostFile> file, const DeviceOpenOptions& opts) {
    const std::string path = file->name();
    const std::string ctx = path + ": ";
    qcow2::OpenOptions oo;
    oo.writable = opts.writable;
    oo.accepted_incompatible_bits = kIncompatZoned;
    oo.owned_ranges = owned_ranges_of;
    ZQ_ASSIGN(auto image, qcow2::Image::open(std::move(file), oo));

    const qcow2::Header& h = image->header();
    bool bit = (h.incompatible_features & kIncompatZoned) != 0;
    const qcow2::Extension* ext = h.find_extension(kZonedExtensionType);
    if (!bit && !ext)
        return make_error(EINVAL, "{}not a zoned image (no zoned extension and incompatible bit 5 clear)", ctx);
    if (!ext) return make_error(EINVAL, "{}incompatible bit 5 (zoned format) is set but the zoned extension is missing", ctx);
    if (!bit) return make_error(EINVAL, "{}the zoned extension is present but incompatible bit 5 (zoned format) is clear", ctx);

    auto decoded = decode_zoned_extension(ext->data);
    if (!decoded) return with_context(decoded.error(), ctx);
    DecodedExtension d = *decoded;
    if (auto s = validate_zoned_config(d.config, image->virtual_size(), image->cluster_size()); !s)
        return with_context(s.error(), ctx);
    auto file_size = image->file().size();
    if (!file_size) return file_size.error();
    if (auto s = validate_zonedmeta_location(d, image->cluster_size(), *file_size); !s)
        return with_context(s.error(), ctx);
    // Writing WPs must never land on the engine's own tables.
    {
        uint64_t a = d.config.zonedmeta_offset, a_end = a + zonedmeta_cluster_bytes(d.config, h.cluster_size());
        auto overlaps = [&](uint64_t off, uint64_t len) { return len != 0 && off < a_end && a < off + len; };
        if (overlaps(h.l1_table_offset, uint64_t{h.l1_size} * 8))
            return make_error(EINVAL, "{}zonedmeta at {} overlaps the L1 table at {}", ctx, a, h.l1_table_offset);
        if (overlaps(h.refcount_table_offset, uint64_t{h.refcount_table_clusters} * h.cluster_size()))
            return make_error(EINVAL, "{}zonedmeta at {} overlaps the refcount table at {}", ctx, a,
                              h.refcount_table_offset);
    }
    std::vector<std::string> clamp_warnings;
    clamp_zone_limits(d.config, &clamp_warnings);
    if (opts.warnings)
        for (auto& w : clamp_warnings) opts.warnings->push_back(ctx + w);

    ZoneGeometry geo(image->virtual_size(), d.config);
    std::vector<std::string> problems;
    auto wpt = WritePointerTable::load(image->file(), d.config.layout, geo, d.config.zonedmeta_offset,
                                       opts.tolerate_bad_write_pointers ? &problems : nullptr);
    if (!wpt) return with_context(wpt.error(), ctx);
    if (opts.warnings)
        for (auto& p : problems) opts.warnings->push_back(ctx + p);
    return std::unique_ptr<ZonedDevice>(
        new Device(path, std::move(image), d.config, std::move(*wpt), opts));
}

}  // namespace zqfs::core
