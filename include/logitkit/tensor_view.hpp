// logitkit — tensor_view: a non-owning strided view of a rank-N array.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "error_handler.hpp"

namespace logitkit {

using index_type = std::ptrdiff_t;

template <std::size_t Rank>
using extents_type = std::array<index_type, Rank>;

namespace detail {

// Multiplies extents, reporting overflow of index_type instead of wrapping.
inline bool checked_mul(index_type a, index_type b, index_type& out) noexcept {
    return !__builtin_mul_overflow(a, b, &out);
}

template <std::size_t Rank>
std::string format_extents(const extents_type<Rank>& e) {
    std::string s = "[";
    for (std::size_t i = 0; i < Rank; ++i) {
        if (i != 0) s += ", ";
        s += std::to_string(e[i]);
    }
    return s + "]";
}

}  // namespace detail

/// A view of `Rank`-dimensional data: a pointer, a shape and strides, all in elements.
///
/// The view owns nothing. Strides may be any value, negative and zero included; the element at
/// index (i0, ..., iN-1) lives at `data() + sum(ik * stride(k))`. All index arithmetic is done in
/// `std::ptrdiff_t`, so tensors of more than 2^31 elements are addressed correctly.
/// `tensor_view<const T, Rank>` is the read-only view; `tensor_view<T, Rank>` converts to it.
template <class T, std::size_t Rank>
class tensor_view {
    static_assert(Rank >= 1 && Rank <= 8, "logitkit::tensor_view supports ranks 1 to 8");
    static_assert(std::is_arithmetic<std::remove_const_t<T>>::value ||
                      std::is_trivially_copyable<std::remove_const_t<T>>::value,
                  "logitkit::tensor_view holds trivially copyable element types");

public:
    using element_type = T;
    using value_type = std::remove_const_t<T>;
    using pointer = T*;
    using reference = T&;
    using extents = extents_type<Rank>;
    static constexpr std::size_t rank_value = Rank;

    /// An empty view: null data and every extent 0.
    constexpr tensor_view() noexcept : data_(nullptr), shape_{}, strides_{} {}

    /// A row-major contiguous view: the last dimension has stride 1.
    tensor_view(pointer data, const extents& shape) : data_(data), shape_(shape), strides_{} {
        validate_shape();
        index_type stride = 1;
        for (std::size_t k = Rank; k-- > 0;) {
            strides_[k] = stride;
            // A zero extent makes the view empty: it addresses nothing, so its strides only need
            // to be well defined (0 once the running product would overflow).
            index_type next = 0;
            if (!detail::checked_mul(stride, shape_[k] == 0 ? 1 : shape_[k], next)) next = 0;
            stride = next;
        }
    }

    /// A view with explicit strides in elements (any sign).
    tensor_view(pointer data, const extents& shape, const extents& strides)
        : data_(data), shape_(shape), strides_(strides) {
        validate_shape();
    }

    /// `tensor_view<T, R>` converts to `tensor_view<const T, R>`.
    template <class U, class = std::enable_if_t<std::is_same<const U, T>::value && !std::is_same<U, T>::value>>
    constexpr tensor_view(const tensor_view<U, Rank>& other) noexcept
        : data_(other.data()), shape_(other.shape()), strides_(other.strides()) {}

    static constexpr std::size_t rank() noexcept { return Rank; }
    constexpr pointer data() const noexcept { return data_; }
    constexpr const extents& shape() const noexcept { return shape_; }
    constexpr const extents& strides() const noexcept { return strides_; }
    constexpr index_type extent(std::size_t i) const noexcept { return shape_[i]; }
    constexpr index_type stride(std::size_t i) const noexcept { return strides_[i]; }

    /// Number of elements (product of extents; validated not to overflow at construction).
    constexpr index_type size() const noexcept {
        index_type n = 1;
        for (std::size_t k = 0; k < Rank; ++k) n *= shape_[k];
        return n;
    }
    constexpr bool empty() const noexcept { return size() == 0; }

    /// True when the view is row-major contiguous (strides of extent-1 dimensions are ignored).
    constexpr bool is_contiguous() const noexcept {
        index_type expected = 1;
        for (std::size_t k = Rank; k-- > 0;) {
            if (shape_[k] != 1 && strides_[k] != expected) return false;
            expected *= shape_[k];
        }
        return true;
    }

    /// Offset in elements of the element at `idx` from `data()`.
    constexpr index_type offset(const extents& idx) const noexcept {
        index_type off = 0;
        for (std::size_t k = 0; k < Rank; ++k) off += idx[k] * strides_[k];
        return off;
    }

    template <class... I,
              class = std::enable_if_t<sizeof...(I) == Rank &&
                                       (std::is_integral<std::decay_t<I>>::value && ...)>>
    constexpr reference operator()(I... idx) const noexcept {
        return data_[offset(extents{static_cast<index_type>(idx)...})];
    }
    constexpr reference operator[](const extents& idx) const noexcept { return data_[offset(idx)]; }

private:
    void validate_shape() const {
        bool empty = false;
        for (std::size_t k = 0; k < Rank; ++k) {
            if (shape_[k] < 0)
                detail::raise_error(detail::error_kind::invalid_argument,
                                    "logitkit::tensor_view: shape[" + std::to_string(k) + "] = " +
                                        std::to_string(shape_[k]) + "; expected >= 0");
            empty = empty || shape_[k] == 0;
        }
        if (empty) return;
        index_type n = 1;
        for (std::size_t k = 0; k < Rank; ++k) {
            if (!detail::checked_mul(n, shape_[k], n))
                detail::raise_error(detail::error_kind::invalid_argument,
                                    "logitkit::tensor_view: shape " + detail::format_extents(shape_) +
                                        " overflows std::ptrdiff_t; expected fewer elements");
        }
    }

    pointer data_;
    extents shape_;
    extents strides_;
};

/// Read-only view alias.
template <class T, std::size_t Rank>
using const_tensor_view = tensor_view<const T, Rank>;

namespace detail {
template <class V>
struct is_tensor_view : std::false_type {};
template <class T, std::size_t R>
struct is_tensor_view<tensor_view<T, R>> : std::true_type {};
}  // namespace detail

template <class V>
inline constexpr bool is_tensor_view_v = detail::is_tensor_view<std::remove_cv_t<V>>::value;

}  // namespace logitkit
