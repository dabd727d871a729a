// logitkit — philox4x32: the Philox-4x32-10 counter-based random number generator.
// SPDX-License-Identifier: MIT
//
// Philox-4x32-10 (J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers:
// as easy as 1, 2, 3", SC 2011) maps a 128-bit counter and a 64-bit key to 128 random bits with
// ten rounds of
//     (x0, x1, x2, x3) -> (hi(M1 * x2) ^ x1 ^ k0, lo(M1 * x2), hi(M0 * x0) ^ x3 ^ k1, lo(M0 * x0))
// where M0 = 0xD2511F53, M1 = 0xCD9E8D57, hi / lo are the halves of the 64-bit product, and the key
// is bumped by the Weyl increments (0x9E3779B9, 0xBB67AE85) before every round but the first.
//
// philox4x32 is a std UniformRandomBitGenerator over the stream of 32-bit words
//     word(p) = block({lo32(p / 4), hi32(p / 4), 0, 0}, {lo32(seed), hi32(seed)})[p % 4]
// positioned at `offset` (the number of words already used). Any word can be computed directly
// from (seed, position), so work split across threads, or vectorised, draws exactly the words a
// single sequential pass would draw. The logitkit sampling kernels (gumbel_softmax, gumbel_noise,
// sample_categorical) give element i of their row-major index space the words at
// offset + i * philox_words_per_element<T> and advance the generator past all the elements.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace logitkit {

/// Number of 32-bit random words the noise of one element of type T takes in the sampling kernels:
/// 1 for float (32 random bits), 2 for double (52 of 64 random bits).
template <class T>
inline constexpr std::uint64_t philox_words_per_element = std::is_same<std::remove_cv_t<T>, double>::value ? 2 : 1;

/// Philox-4x32-10 as a UniformRandomBitGenerator of 32-bit words; see the top of this file.
class philox4x32 {
public:
    using result_type = std::uint32_t;
    using counter_type = std::array<std::uint32_t, 4>;
    using key_type = std::array<std::uint32_t, 2>;

    static constexpr std::uint32_t multiplier0 = 0xD2511F53u;
    static constexpr std::uint32_t multiplier1 = 0xCD9E8D57u;
    static constexpr std::uint32_t weyl0 = 0x9E3779B9u;
    static constexpr std::uint32_t weyl1 = 0xBB67AE85u;
    static constexpr int rounds = 10;
    static constexpr std::uint64_t default_seed = 20111115u;

    /// The Philox-4x32-10 bijection of `counter` under `key`.
    static constexpr counter_type block(counter_type counter, key_type key) noexcept {
        for (int r = 0; r < rounds; ++r) {
            if (r != 0) {
                key[0] += weyl0;
                key[1] += weyl1;
            }
            const std::uint64_t p0 = std::uint64_t(multiplier0) * counter[0];
            const std::uint64_t p1 = std::uint64_t(multiplier1) * counter[2];
            counter = {static_cast<std::uint32_t>(p1 >> 32) ^ counter[1] ^ key[0], static_cast<std::uint32_t>(p1),
                       static_cast<std::uint32_t>(p0 >> 32) ^ counter[3] ^ key[1], static_cast<std::uint32_t>(p0)};
        }
        return counter;
    }

    /// The key of a seed: its low and high 32-bit halves.
    static constexpr key_type key_of(std::uint64_t seed) noexcept {
        return {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
    }
    /// The counter of the `index`-th block of the stream.
    static constexpr counter_type counter_of(std::uint64_t index) noexcept {
        return {static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32), 0u, 0u};
    }
    /// Word `position` of the stream of `seed`, computed directly.
    static constexpr result_type word_at(std::uint64_t seed, std::uint64_t position) noexcept {
        return block(counter_of(position >> 2), key_of(seed))[position & 3];
    }

    /// The generator of `seed`, positioned at word `offset` of its stream.
    explicit philox4x32(std::uint64_t seed_value = default_seed, std::uint64_t offset = 0) noexcept
        : seed_(seed_value), offset_(offset) {}

    static constexpr result_type min() noexcept { return 0; }
    static constexpr result_type max() noexcept { return 0xFFFFFFFFu; }

    /// The next word of the stream.
    result_type operator()() noexcept {
        const std::uint64_t b = offset_ >> 2;
        if (!cached_ || b != cached_block_) {
            words_ = block(counter_of(b), key_of(seed_));
            cached_block_ = b;
            cached_ = true;
        }
        return words_[offset_++ & 3];
    }

    /// Skips `n` words (O(1)).
    void discard(std::uint64_t n) noexcept { offset_ += n; }
    /// Restarts the stream of `seed` at word `offset`.
    void seed(std::uint64_t new_seed, std::uint64_t offset = 0) noexcept {
        seed_ = new_seed;
        offset_ = offset;
        cached_ = false;
    }

    std::uint64_t seed_value() const noexcept { return seed_; }
    /// Position in the stream: the number of words used since word 0.
    std::uint64_t offset() const noexcept { return offset_; }
    /// Moves to word `offset` of the same stream.
    void set_offset(std::uint64_t offset) noexcept { offset_ = offset; }

    friend bool operator==(const philox4x32& a, const philox4x32& b) noexcept {
        return a.seed_ == b.seed_ && a.offset_ == b.offset_;
    }
    friend bool operator!=(const philox4x32& a, const philox4x32& b) noexcept { return !(a == b); }

private:
    std::uint64_t seed_;
    std::uint64_t offset_;
    std::uint64_t cached_block_ = 0;
    counter_type words_{};
    bool cached_ = false;
};

}  // namespace logitkit
