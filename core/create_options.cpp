#include "core/create_options.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <limits>

namespace zqfs::core {
namespace {

Result<uint64_t> parse_number(std::string_view key, std::string_view text, uint64_t max) {
    uint64_t v = 0;
    int base = 10;
    std::string_view digits = text;
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
        base = 16;
        digits.remove_prefix(2);
    }
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size())
        return make_error(EINVAL, "option {}: invalid number '{}'", key, text);
    if (v > max) return make_error(EINVAL, "option {}: value '{}' is larger than {}", key, text, max);
    return v;
}

Result<uint64_t> parse_option_size(std::string_view key, std::string_view text) {
    auto r = parse_size(text);
    if (!r) return make_error(EINVAL, "option {}: {}", key, r.error().message);
    return r;
}

Result<uint32_t> parse_u32_size(std::string_view key, std::string_view text) {
    ZQ_ASSIGN(uint64_t v, parse_option_size(key, text));
    if (v > std::numeric_limits<uint32_t>::max())
        return make_error(EINVAL, "option {}: value '{}' does not fit in 32 bits", key, text);
    return static_cast<uint32_t>(v);
}

std::string normalize_key(std::string_view key) {
    std::string k(key);
    std::replace(k.begin(), k.end(), '-', '_');
    return k;
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
    if (text.empty()) return make_error(EINVAL, "invalid size '': empty");
    size_t i = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == 0) return make_error(EINVAL, "invalid size '{}'", text);
    uint64_t whole = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + i, whole);
    if (ec != std::errc() || p != text.data() + i) return make_error(EINVAL, "invalid size '{}': too large", text);
    // Optional decimal fraction, as qemu accepts "1.5G".
    uint64_t frac_num = 0, frac_den = 1;
    if (i < text.size() && text[i] == '.') {
        size_t j = ++i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            if (frac_den < 1000000000000ull) {
                frac_num = frac_num * 10 + static_cast<uint64_t>(text[i] - '0');
                frac_den *= 10;
            }
            ++i;
        }
        if (i == j) return make_error(EINVAL, "invalid size '{}'", text);
    }
    uint64_t mult = 1;
    if (i < text.size()) {
        switch (text[i]) {
            case 'b': case 'B': mult = 1; break;
            case 'k': case 'K': mult = 1ull << 10; break;
            case 'm': case 'M': mult = 1ull << 20; break;
            case 'g': case 'G': mult = 1ull << 30; break;
            case 't': case 'T': mult = 1ull << 40; break;
            case 'p': case 'P': mult = 1ull << 50; break;
            case 'e': case 'E': mult = 1ull << 60; break;
            default: return make_error(EINVAL, "invalid size '{}': unknown suffix '{}'", text, text.substr(i));
        }
        ++i;
        // Accept "KiB"/"KB" style endings too.
        if (mult > 1 && i < text.size() && (text[i] == 'i' || text[i] == 'I')) ++i;
        if (mult > 1 && i < text.size() && (text[i] == 'b' || text[i] == 'B')) ++i;
        if (i != text.size()) return make_error(EINVAL, "invalid size '{}': unknown suffix '{}'", text, text.substr(i - 1));
    }
    if (whole > std::numeric_limits<uint64_t>::max() / mult)
        return make_error(EINVAL, "invalid size '{}': too large", text);
    uint64_t v = whole * mult;
    if (frac_num != 0) {
        // mult <= 2^60 and frac_num < frac_den <= 10^12: compute exactly in 128 bits.
        unsigned __int128 f = static_cast<unsigned __int128>(frac_num) * mult;
        if (f % frac_den != 0) return make_error(EINVAL, "invalid size '{}': not a whole number of bytes", text);
        unsigned __int128 total = static_cast<unsigned __int128>(v) + f / frac_den;
        if (total > std::numeric_limits<uint64_t>::max()) return make_error(EINVAL, "invalid size '{}': too large", text);
        v = static_cast<uint64_t>(total);
    }
    return v;
}

Result<std::vector<std::pair<std::string, std::string>>> split_option_list(std::string_view arg) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string item;
    auto finish_item = [&]() -> Status {
        if (item.empty()) return {};
        size_t eq = item.find('=');
        if (eq == std::string::npos) return make_error(EINVAL, "option '{}' needs a value (key=value)", item);
        if (eq == 0) return make_error(EINVAL, "option '{}' has no name", item);
        out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
        item.clear();
        return {};
    };
    for (size_t i = 0; i < arg.size(); ++i) {
        if (arg[i] == ',') {
            if (i + 1 < arg.size() && arg[i + 1] == ',') {
                item.push_back(',');
                ++i;
                continue;
            }
            ZQ_TRY(finish_item());
        } else {
            item.push_back(arg[i]);
        }
    }
    ZQ_TRY(finish_item());
    return out;
}

Result<CreateSpec> parse_create_options(const std::vector<std::string>& o_args, std::optional<std::string> size_arg,
                                        std::vector<std::string>* warnings) {
    CreateSpec spec;
    std::optional<uint64_t> size;
    bool append_given = false;
    for (const std::string& arg : o_args) {
        ZQ_ASSIGN(auto pairs, split_option_list(arg));
        for (auto& [raw_key, value] : pairs) {
            const std::string key = normalize_key(raw_key);
            if (key == "size") {
                ZQ_ASSIGN(size, parse_option_size(raw_key, value));
            } else if (key == "cluster_size") {
                ZQ_ASSIGN(uint64_t v, parse_option_size(raw_key, value));
                if (v < 512 || v > (2u << 20) || !std::has_single_bit(v))
                    return make_error(EINVAL, "option {}: '{}' is not a power of two between 512 and 2M", raw_key,
                                      value);
                spec.cluster_size = static_cast<uint32_t>(v);
            } else if (key == "refcount_bits") {
                ZQ_ASSIGN(uint64_t v, parse_number(raw_key, value, 64));
                if (v == 0 || !std::has_single_bit(v))
                    return make_error(EINVAL, "option {}: '{}' is not a power of two between 1 and 64", raw_key,
                                      value);
                spec.refcount_bits = static_cast<uint32_t>(v);
            } else if (key == "compression_type") {
                if (value != "zlib")
                    return make_error(EINVAL, "option {}: '{}' is not supported (only zlib)", raw_key, value);
            } else if (key == "compat") {
                if (value != "1.1" && value != "v3")
                    return make_error(EINVAL, "option {}: '{}' is not supported (zoned images are qcow2 v3, 1.1)",
                                      raw_key, value);
            } else if (key == "zone.size") {
                ZQ_ASSIGN(spec.zone_size, parse_option_size(raw_key, value));
            } else if (key == "zone.capacity") {
                ZQ_ASSIGN(spec.zone_capacity, parse_option_size(raw_key, value));
            } else if (key == "zone.conventional_zones") {
                ZQ_ASSIGN(uint64_t v, parse_number(raw_key, value, UINT32_MAX));
                spec.conventional_zones = static_cast<uint32_t>(v);
            } else if (key == "zone.max_append_bytes") {
                ZQ_ASSIGN(spec.max_append_bytes, parse_u32_size(raw_key, value));
                append_given = true;
            } else if (key == "zone.max_open_zones") {
                ZQ_ASSIGN(uint64_t v, parse_number(raw_key, value, UINT32_MAX));
                spec.max_open_zones = static_cast<uint32_t>(v);
            } else if (key == "zone.max_active_zones") {
                ZQ_ASSIGN(uint64_t v, parse_number(raw_key, value, UINT32_MAX));
                spec.max_active_zones = static_cast<uint32_t>(v);
            } else if (key == "zone.mode") {
                if (value != "host-managed" && value != "host_managed")
                    return make_error(EINVAL, "option {}: '{}' is not supported (only host-managed)", raw_key, value);
            } else if (key == "zone.layout") {
                if (value == "seed")
                    spec.layout = Layout::seed;
                else if (value == "latest")
                    spec.layout = Layout::latest;
                else
                    return make_error(EINVAL, "option {}: '{}' is not seed or latest", raw_key, value);
            } else {
                return make_error(EINVAL, "unknown option '{}'", raw_key);
            }
        }
    }
    if (size_arg) {
        auto r = parse_size(*size_arg);
        if (!r) return make_error(EINVAL, "image size: {}", r.error().message);
        size = *r;
    }
    if (!size) return make_error(EINVAL, "image size missing: give SIZE or -o size=");
    spec.virtual_size = *size;
    if (append_given && spec.layout == Layout::latest && warnings)
        warnings->push_back("zone.max_append_bytes is not recorded by layout latest; ignored");
    if (append_given && spec.layout == Layout::latest) spec.max_append_bytes.reset();
    return spec;
}

}  // namespace zqfs::core
