#include "core/zone_types.h"

namespace zqfs::core {

std::string_view cond_name(ZoneCond c) {
    switch (c) {
        case ZoneCond::not_wp: return "not-write-pointer";
        case ZoneCond::empty: return "empty";
        case ZoneCond::implicit_open: return "open-implicit";
        case ZoneCond::explicit_open: return "open-explicit";
        case ZoneCond::closed: return "closed";
        case ZoneCond::read_only: return "read-only";
        case ZoneCond::full: return "full";
        case ZoneCond::offline: return "offline";
    }
    return "unknown";
}

std::string_view layout_name(Layout l) {
    switch (l) {
        case Layout::seed: return "seed";
        case Layout::latest: return "latest";
    }
    return "unknown";
}

}  // namespace zqfs::core
