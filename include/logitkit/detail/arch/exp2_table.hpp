// logitkit — the table of 2^(j/16) the exponential's table-driven reduction reads (see exp.hpp).
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>

namespace logitkit {
namespace detail {

/// 2^(j/16), j = 0..15, rounded to T; a table of 2^L entries (L <= 4) takes every 2^(4-L)-th.
template <class T>
struct exp2_fraction_table {
    alignas(64) static constexpr T value[16] = {
        T(1.0L),
        T(1.0442737824274138403219665L),
        T(1.0905077326652576592070107L),
        T(1.1387886347566916537038303L),
        T(1.1892071150027210667175000L),
        T(1.2418578120734840485936775L),
        T(1.2968395546510096659337541L),
        T(1.3542555469368927282980147L),
        T(1.4142135623730950488016887L),
        T(1.4768261459394993113869075L),
        T(1.5422108254079408236122919L),
        T(1.6104903319492543081795207L),
        T(1.6817928305074290860622510L),
        T(1.7562521603732994831121606L),
        T(1.8340080864093424634870832L),
        T(1.9152065613971472938726113L)};

    /// The entry for the low L bits of k.
    template <int L, class U>
    static constexpr T entry(U k) noexcept {
        return value[static_cast<std::size_t>(k & U((1 << L) - 1)) << (4 - L)];
    }
};

}  // namespace detail
}  // namespace logitkit
