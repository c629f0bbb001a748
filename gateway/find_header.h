#pragma once
// Header lookups that walk the fields in arrival order. Beast's own find() searches its
// tree with a case-insensitive string compare at every node, also for a known field; a
// request carries a handful of headers, and the walk compares the fields' enums (or, for a
// name Beast does not know, the names' first bytes, which mostly differ).
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <string_view>

namespace frugal::gateway {

// The first field called `name`, or f.end() (as Fields::find).
template <class Fields>
auto find_header(const Fields& f, boost::beast::http::field name) {
  auto it = f.begin();
  while (it != f.end() && it->name() != name) ++it;
  return it;
}

template <class Fields>
auto find_header(const Fields& f, std::string_view name) {
  auto it = f.begin();
  while (it != f.end() && !boost::beast::iequals(it->name_string(), name)) ++it;
  return it;
}

}  // namespace frugal::gateway
