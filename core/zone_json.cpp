#include "core/zone_json.h"

namespace zqfs::core {

nlohmann::ordered_json zone_info_json(const ZoneInfo& z) {
    bool seq = z.type == ZoneType::sequential;
    nlohmann::ordered_json j;
    j["zone"] = z.index;
    j["type"] = seq ? "seq" : "cnv";
    j["cond"] = std::string(cond_name(z.cond));
    j["cond_code"] = static_cast<int>(z.cond);
    j["start"] = z.start;
    j["len"] = z.len;
    j["capacity"] = z.capacity;
    j["wp"] = z.wp;
    j["size"] = seq ? z.wp - z.start : z.capacity;
    return j;
}

void append_zone_json(fmt::memory_buffer& out, const ZoneInfo& z) {
    bool seq = z.type == ZoneType::sequential;
    // cond_name() values are plain ASCII words: nothing to escape.
    fmt::format_to(fmt::appender(out),
                   R"({{"zone":{},"type":"{}","cond":"{}","cond_code":{},"start":{},"len":{},"capacity":{},"wp":{},"size":{}}})",
                   z.index, seq ? "seq" : "cnv", cond_name(z.cond), static_cast<int>(z.cond), z.start, z.len,
                   z.capacity, z.wp, seq ? z.wp - z.start : z.capacity);
}

nlohmann::ordered_json device_info_json(const ZonedConfig& cfg, uint64_t virtual_size, uint32_t cluster_size,
                                const DeviceCounts& counts) {
    static constexpr ZoneCond kConds[] = {ZoneCond::not_wp, ZoneCond::empty,     ZoneCond::implicit_open,
                                          ZoneCond::explicit_open, ZoneCond::closed, ZoneCond::read_only,
                                          ZoneCond::full,   ZoneCond::offline};
    nlohmann::ordered_json j;
    j["layout"] = std::string(layout_name(cfg.layout));
    j["virtual_size"] = virtual_size;
    j["cluster_size"] = cluster_size;
    j["zone_size"] = cfg.zone_size;
    j["zone_capacity"] = cfg.zone_capacity;
    j["nr_zones"] = cfg.nr_zones;
    j["conventional_zones"] = cfg.conventional_zones;
    j["sequential_zones"] = cfg.nr_zones - cfg.conventional_zones;
    j["max_open_zones"] = cfg.max_open_zones;
    j["max_active_zones"] = cfg.max_active_zones;
    if (cfg.layout == Layout::seed)
        j["max_append_bytes"] = cfg.max_append_bytes;
    else
        j["max_append_bytes"] = nullptr;
    j["zonedmeta_offset"] = cfg.zonedmeta_offset;
    nlohmann::ordered_json conds = nlohmann::ordered_json::object();
    for (ZoneCond c : kConds) conds[std::string(cond_name(c))] = counts.per_cond[static_cast<int>(c)];
    j["conditions"] = conds;
    j["open_zones"] = counts.open;
    j["active_zones"] = counts.active;
    // zonefs's sysfs names for the same resources.
    j["max_wro_seq_files"] = cfg.max_open_zones;
    j["nr_wro_seq_files"] = counts.open;
    j["max_active_seq_files"] = cfg.max_active_zones;
    j["nr_active_seq_files"] = counts.active;
    return j;
}

}  // namespace zqfs::core
