// An in-memory HostFile that records every write, punch, truncate and sync,
// and can fail chosen operations. The crash simulator replays its log to
// build the images a power loss could leave behind.
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "qcow2/host_file.h"

namespace zqfs::testing {

struct HostOp {
    enum Kind { write, punch, truncate, sync } kind;
    uint64_t offset = 0;
    uint64_t length = 0;  // punch length, or truncate size
    std::vector<std::byte> data;
};

struct HostLog {
    std::mutex mutex;
    std::vector<HostOp> ops;
};

inline void apply_op(std::vector<std::byte>& img, const HostOp& op) {
    switch (op.kind) {
        case HostOp::write:
            if (op.data.empty()) break;
            if (img.size() < op.offset + op.data.size()) img.resize(op.offset + op.data.size());
            std::memcpy(img.data() + op.offset, op.data.data(), op.data.size());
            break;
        case HostOp::punch:
            if (op.offset < img.size())
                std::memset(img.data() + op.offset, 0, std::min<uint64_t>(op.length, img.size() - op.offset));
            break;
        case HostOp::truncate:
            img.resize(op.length);
            break;
        case HostOp::sync:
            break;
    }
}

class RecordingFile final : public qcow2::HostFile {
public:
    RecordingFile(std::string name, std::vector<std::byte> initial, std::shared_ptr<HostLog> log)
        : name_(std::move(name)), data_(std::move(initial)), log_(std::move(log)) {}

    // Return an errno to fail the operation instead of performing it.
    std::function<int(const HostOp&)> fault;

    Status read_at(uint64_t off, std::span<std::byte> buf) override {
        if (buf.empty()) return {};
        std::lock_guard lk(log_->mutex);
        std::memset(buf.data(), 0, buf.size());
        if (off < data_.size()) std::memcpy(buf.data(), data_.data() + off, std::min<uint64_t>(buf.size(), data_.size() - off));
        return {};
    }
    Status write_at(uint64_t off, std::span<const std::byte> buf) override {
        return record({HostOp::write, off, buf.size(), {buf.begin(), buf.end()}});
    }
    Status sync() override { return record({HostOp::sync}); }
    Status punch_hole(uint64_t off, uint64_t len) override { return record({HostOp::punch, off, len, {}}); }
    Status truncate(uint64_t size) override { return record({HostOp::truncate, 0, size, {}}); }
    Result<uint64_t> size() override {
        std::lock_guard lk(log_->mutex);
        return uint64_t{data_.size()};
    }
    Result<uint64_t> allocated_bytes() override { return size(); }
    const std::string& name() const override { return name_; }

private:
    Status record(HostOp op) {
        std::lock_guard lk(log_->mutex);
        if (fault)
            if (int e = fault(op)) return make_error(e, "{}: injected failure", name_);
        apply_op(data_, op);
        log_->ops.push_back(std::move(op));
        return {};
    }

    std::string name_;
    std::vector<std::byte> data_;
    std::shared_ptr<HostLog> log_;
};

// The image a crash after `count` logged operations may leave: everything up
// to the last sync before that point, then each later write independently
// kept or lost, and kept ones possibly torn at 512-byte sector granularity.
inline std::vector<std::byte> crash_image(const std::vector<std::byte>& base, const std::vector<HostOp>& ops, size_t count,
                                          std::mt19937& rng) {
    std::vector<std::byte> img = base;
    size_t synced = 0;
    for (size_t i = 0; i < count; ++i)
        if (ops[i].kind == HostOp::sync) synced = i + 1;
    for (size_t i = 0; i < synced; ++i) apply_op(img, ops[i]);
    for (size_t i = synced; i < count; ++i) {
        const HostOp& op = ops[i];
        if (rng() % 2) continue;  // lost
        if (op.kind == HostOp::write && op.data.size() > 512 && rng() % 4 == 0) {
            // Torn: only some sectors reached the disk.
            HostOp part = op;
            for (uint64_t s = 0; s < op.data.size(); s += 512) {
                if (rng() % 2) continue;
                part.offset = op.offset + s;
                part.data.assign(op.data.begin() + static_cast<ptrdiff_t>(s),
                                 op.data.begin() + static_cast<ptrdiff_t>(std::min<uint64_t>(s + 512, op.data.size())));
                apply_op(img, part);
            }
            continue;
        }
        apply_op(img, op);
    }
    return img;
}

}  // namespace zqfs::testing
