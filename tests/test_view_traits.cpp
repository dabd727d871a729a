// Compile-time properties of tensor_view. The static_asserts are the test; the TEST_CASE only
// registers the file with the test runner.
#include <logitkit/tensor_view.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

using logitkit::tensor_view;

namespace {

// Detects whether v(i...) is well-formed for a given number of index arguments.
template <class V, class = void, class... I>
struct callable_with : std::false_type {};
template <class V, class... I>
struct callable_with<V, std::void_t<decltype(std::declval<V&>()(std::declval<I>()...))>, I...> : std::true_type {};

}  // namespace

// Cheap to pass by value.
static_assert(std::is_trivially_copyable<tensor_view<float, 2>>::value, "tensor_view is trivially copyable");
static_assert(std::is_trivially_copyable<tensor_view<const double, 4>>::value, "const views are trivially copyable");
static_assert(std::is_trivially_destructible<tensor_view<float, 8>>::value, "tensor_view is trivially destructible");
static_assert(std::is_nothrow_copy_constructible<tensor_view<float, 3>>::value, "copy does not throw");
static_assert(std::is_nothrow_default_constructible<tensor_view<float, 3>>::value, "default construction does not throw");

// Mutable converts to const, not the reverse.
static_assert(std::is_convertible<tensor_view<float, 2>, tensor_view<const float, 2>>::value,
              "tensor_view<float, 2> converts to tensor_view<const float, 2>");
static_assert(std::is_nothrow_constructible<tensor_view<const float, 2>, tensor_view<float, 2>>::value,
              "the const conversion does not throw");
static_assert(!std::is_convertible<tensor_view<const float, 2>, tensor_view<float, 2>>::value,
              "const views do not convert to mutable views");
static_assert(!std::is_constructible<tensor_view<float, 2>, tensor_view<const float, 2>>::value,
              "const views cannot be made mutable explicitly either");

// No conversion between ranks or element types.
static_assert(!std::is_convertible<tensor_view<float, 2>, tensor_view<float, 3>>::value, "no conversion 2 -> 3");
static_assert(!std::is_constructible<tensor_view<float, 3>, tensor_view<float, 2>>::value, "no construction 2 -> 3");
static_assert(!std::is_convertible<tensor_view<float, 2>, tensor_view<const float, 1>>::value, "no conversion across ranks");
static_assert(!std::is_convertible<tensor_view<float, 2>, tensor_view<double, 2>>::value, "no float -> double");
static_assert(!std::is_convertible<tensor_view<double, 2>, tensor_view<const float, 2>>::value, "no double -> const float");

// rank(), element_type, value_type.
static_assert(tensor_view<float, 1>::rank() == 1, "rank 1");
static_assert(tensor_view<float, 4>::rank() == 4, "rank 4");
static_assert(tensor_view<const double, 8>::rank() == 8, "rank 8");
static_assert(std::is_same<tensor_view<float, 2>::element_type, float>::value, "element_type");
static_assert(std::is_same<tensor_view<const float, 2>::element_type, const float>::value, "const element_type");
static_assert(std::is_same<tensor_view<const float, 2>::value_type, float>::value, "value_type drops const");
static_assert(std::is_same<logitkit::const_tensor_view<double, 3>, tensor_view<const double, 3>>::value,
              "const_tensor_view alias");
static_assert(std::is_same<logitkit::index_type, std::ptrdiff_t>::value, "index_type is std::ptrdiff_t");
static_assert(std::is_same<logitkit::extents_type<3>, std::array<std::ptrdiff_t, 3>>::value, "extents_type");

// Element access: references of the element type, exactly Rank indices.
static_assert(std::is_same<decltype(std::declval<tensor_view<const float, 2>&>()(0, 0)), const float&>::value,
              "const views give const references");
static_assert(std::is_same<decltype(std::declval<const tensor_view<float, 2>&>()(0, 0)), float&>::value,
              "a const view object of mutable elements still gives mutable references");
static_assert(callable_with<tensor_view<float, 2>, void, int, int>::value, "two indices for rank 2");
static_assert(!callable_with<tensor_view<float, 2>, void, int>::value, "too few indices");
static_assert(!callable_with<tensor_view<float, 2>, void, int, int, int>::value, "too many indices");
static_assert(!callable_with<tensor_view<float, 1>, void, double>::value, "indices are integral");

// The trait.
static_assert(logitkit::is_tensor_view_v<tensor_view<float, 2>>, "is_tensor_view_v");
static_assert(logitkit::is_tensor_view_v<const tensor_view<const float, 2>>, "is_tensor_view_v ignores cv");
static_assert(!logitkit::is_tensor_view_v<float*>, "pointers are not views");

// Usable in constant expressions.
constexpr tensor_view<const float, 3> empty_view{};
static_assert(empty_view.size() == 0 && empty_view.empty() && empty_view.data() == nullptr, "constexpr default view");

TEST_CASE("tensor_view: compile-time properties hold", "[tensor_view][traits]") {
    SUCCEED("the static_asserts in this file compiled");
}
