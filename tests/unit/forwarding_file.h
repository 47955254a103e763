// A HostFile that passes every call on to another one. Test wrappers that
// observe or break some calls derive from it and override only those, so
// the rest (including interface methods added later) keeps reaching the
// real file.
#pragma once

#include <memory>

#include "qcow2/host_file.h"

namespace zqfs::testing {

class ForwardingFile : public qcow2::HostFile {
public:
    explicit ForwardingFile(std::unique_ptr<qcow2::HostFile> inner) : inner_(std::move(inner)) {}

    Status read_at(uint64_t o, std::span<std::byte> b) override { return inner_->read_at(o, b); }
    Status write_at(uint64_t o, std::span<const std::byte> b) override { return inner_->write_at(o, b); }
    Status sync() override { return inner_->sync(); }
    void start_writeback(uint64_t o, uint64_t n) override { inner_->start_writeback(o, n); }
    Status punch_hole(uint64_t o, uint64_t n) override { return inner_->punch_hole(o, n); }
    Result<uint64_t> size() override { return inner_->size(); }
    Status truncate(uint64_t s) override { return inner_->truncate(s); }
    Result<uint64_t> allocated_bytes() override { return inner_->allocated_bytes(); }
    const std::string& name() const override { return inner_->name(); }
    int fd() const override { return inner_->fd(); }

private:
    std::unique_ptr<qcow2::HostFile> inner_;
};

}  // namespace zqfs::testing
