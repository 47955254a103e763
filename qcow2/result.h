// Errors as values. Every fallible operation returns Result<T> (or Status,
// i.e. Result<void>) carrying an errno and a one-line message. The message
// travels up unchanged to the line a command prints or is logged when a
// file operation returns the errno. No exceptions cross layer boundaries.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace zqfs {

struct Error {
    int code = EIO;       // errno value a file operation should return
    std::string message;  // one line, no trailing newline
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error e) : v_(std::move(e)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(v_); }
    Error& error() { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error e) : err_(std::move(e)), failed_(true) {}

    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return err_; }
    Error& error() { return err_; }

private:
    Error err_;
    bool failed_ = false;
};

using Status = Result<void>;

template <class... Args>
Error make_error(int code, fmt::format_string<Args...> f, Args&&... args) {
    return Error{code, fmt::format(f, std::forward<Args>(args)...)};
}

// Prefixes context ("image.qcow2: ") to an error on its way up.
inline Error with_context(Error e, const std::string& prefix) {
    e.message = prefix + e.message;
    return e;
}

}  // namespace zqfs

// Propagate a failed Status/Result from the enclosing function.
#define ZQ_TRY(expr)                                   \
    do {                                               \
        auto zq_try_r_ = (expr);                       \
        if (!zq_try_r_.ok()) return zq_try_r_.error(); \
    } while (0)

// Evaluate a Result<T>; on success bind its value to `var`, else return the error.
#define ZQ_CONCAT_INNER(a, b) a##b
#define ZQ_CONCAT(a, b) ZQ_CONCAT_INNER(a, b)
#define ZQ_ASSIGN(var, expr) ZQ_ASSIGN_IMPL(ZQ_CONCAT(zq_assign_r_, __LINE__), var, expr)
#define ZQ_ASSIGN_IMPL(tmp, var, expr)       \
    auto tmp = (expr);                       \
    if (!tmp.ok()) return tmp.error();       \
    var = std::move(tmp).value()
