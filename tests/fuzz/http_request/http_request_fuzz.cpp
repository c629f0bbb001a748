// Client requests as the session reads them (gateway/session.cpp): one parser per
// request with frugal's limits (gateway/request_parser.h), pipelined requests out of one
// buffer until an error or a request that does not keep the connection alive, bytes
// arriving in reads of a size the input chooses.
//
// Input: byte 0 picks the read size and the body limit, the rest is what the client sent.
#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/request_parser.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

// A SyncReadStream over the input that hands out at most `chunk` bytes per read.
class ByteStream {
 public:
  ByteStream(std::string_view bytes, size_t chunk) : in_(bytes), chunk_(chunk) {}
  template <class Buffers>
  size_t read_some(const Buffers& buffers, boost::system::error_code& ec) {
    if (in_.empty()) {
      ec = asio::error::eof;
      return 0;
    }
    ec = {};
    const size_t n = asio::buffer_copy(buffers, asio::buffer(in_.data(), std::min(chunk_, in_.size())));
    in_.remove_prefix(n);
    return n;
  }
  template <class Buffers>
  size_t read_some(const Buffers& buffers) {
    boost::system::error_code ec;
    const size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  std::string_view in_;
  size_t chunk_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal;
  if (size == 0) return 0;
  const size_t chunk = (data[0] & 0x7f) == 0 ? 1 << 20 : (data[0] & 0x7f);
  // The default server.body_limit (8 MiB) or a small one the fuzzer can exceed.
  const uint64_t body_limit = (data[0] & 0x80) ? 64 : 8u << 20;
  ByteStream stream(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), chunk);
  boost::beast::flat_buffer buffer(gateway::kRequestBufferLimit);
  for (int n = 0;; ++n) {
    gateway::RequestParser parser;
    gateway::limit_request_parser(parser, body_limit);
    boost::system::error_code ec;
    bhttp::read(stream, buffer, parser, ec);
    const auto& req = parser.get();
    // The session answers a framing error with 400 and closes, like a parse error.
    const bool framed = !ec && !gateway::framing_error(req);
    if (n == 0) fuzz::accepted(framed);
    // What the session reads from a request, also after an error (to pick the error shape).
    (void)req.target().find('?');
    (void)(req.find("anthropic-version") != req.end());
    fuzz::require(buffer.size() <= gateway::kRequestBufferLimit, "the read buffer outgrew its limit");
    if (!framed) break;
    fuzz::require(req.body().size() <= body_limit, "a body over the limit was accepted");
    if (const auto cl = parser.content_length()) {
      fuzz::require(req.body().size() == *cl, "body length differs from Content-Length");
    }
    (void)req.find("x-request-id");
    if (!req.keep_alive()) break;
  }
  return 0;
}
