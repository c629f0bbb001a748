#pragma once
// How a client's request is read off the connection: Beast's parser with frugal's
// limits. Header-only so that the fuzz target (tests/fuzz/http_request/) parses with
// exactly the settings the session uses, without linking the gateway.
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/error.h"

namespace frugal::gateway {

// Request line plus headers; a larger head is 400 and the connection closes.
inline constexpr size_t kRequestHeaderLimit = 64 * 1024;

// The connection's read buffer holds what the parser has not consumed yet: a head (up to
// the limit above), a chunk header or the trailers, and what one read brought beyond the
// request. Boost 1.81's parser bounds neither chunk extensions nor trailers, so without
// this cap a client could make the session buffer without limit until the read timeout
// (a read past it fails with buffer_overflow: 400 and close).
inline constexpr size_t kRequestBufferLimit = 2 * kRequestHeaderLimit;

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// `body_limit`: server.body_limit (a larger body is 413).
inline void limit_request_parser(RequestParser& parser, uint64_t body_limit) {
  parser.header_limit(kRequestHeaderLimit);
  parser.body_limit(body_limit);
}

// Request framing that Beast accepts but RFC 9112 §6.3 makes an error (a request
// smuggling vector): a Transfer-Encoding other than exactly "chunked", more than one,
// or one together with a Content-Length. Beast frames a request whose codings do not
// end in chunked as having no body (the body would then run as the next request), and
// takes the Content-Length when Transfer-Encoding came first. Answered with 400 and the
// connection closed.
inline std::optional<Error> framing_error(const RequestParser::value_type& req) {
  namespace bhttp = boost::beast::http;
  const auto te = req.find(bhttp::field::transfer_encoding);
  if (te == req.end()) return std::nullopt;
  if (req.count(bhttp::field::transfer_encoding) > 1 || !boost::beast::iequals(te->value(), "chunked"))
    return make_error(ErrorKind::kInvalidRequest,
                      "Unsupported Transfer-Encoding: only 'chunked' (or a Content-Length) frames a request body.",
                      "", "bad_transfer_encoding");
  if (req.find(bhttp::field::content_length) != req.end())
    return make_error(ErrorKind::kInvalidRequest,
                      "A request may not carry both Transfer-Encoding and Content-Length.", "",
                      "bad_transfer_encoding");
  return std::nullopt;
}

}  // namespace frugal::gateway
