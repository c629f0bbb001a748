// The OTLP request bodies, read back field by field with a test-only wire reader
// (proto_reader.h) against the field numbers of opentelemetry-proto v1.
#include <doctest/doctest.h>

#include <map>

#include "gateway/otlp/encode.h"
#include "gateway/otlp/spans.h"
#include "proto_reader.h"
#include "trace_fixtures.h"

using namespace frugal;
using namespace frugal::otlp;
using namespace frugal::otlp::testing;

namespace {

// KeyValue list → key → AnyValue fields.
std::map<std::string, std::vector<Field>> kvs(const std::vector<Field>& fs, uint32_t number) {
  std::map<std::string, std::vector<Field>> out;
  for (const Field& kv : all(fs, number)) {
    const auto f = parse(kv.bytes);
    out[one(f, 1).bytes] = parse(one(f, 2).bytes);
  }
  return out;
}

}  // namespace

TEST_CASE("otlp encode: ExportTraceServiceRequest carries the resource, scope and every span field") {
  const router::RequestTrace t = escalated();
  const std::string body = encode_traces(resource_attributes("svc"), spans(t));
  const auto req = parse(body);
  const auto rs = parse(one(req, 1).bytes);                       // ResourceSpans
  const auto resource = kvs(parse(one(rs, 1).bytes), 1);          // Resource.attributes
  CHECK(one(resource.at("service.name"), 1).bytes == "svc");      // AnyValue.string_value
  const auto ss = parse(one(rs, 2).bytes);                        // ScopeSpans
  CHECK(one(parse(one(ss, 1).bytes), 1).bytes == "frugal");       // InstrumentationScope.name
  CHECK(one(ss, 3).bytes == kSchemaUrl);
  const auto span_fields = all(ss, 2);
  REQUIRE(span_fields.size() == 5);
  const auto root = parse(span_fields[0].bytes);
  CHECK(one(root, 1).bytes == std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16));
  CHECK(one(root, 2).bytes == std::string(8, '\x11'));
  CHECK(!has(root, 4));  // no parent
  CHECK(one(root, 5).bytes == "chat auto");
  CHECK(one(root, 6).value == 2);  // SPAN_KIND_SERVER
  CHECK(one(root, 7).wire == 1);   // fixed64
  CHECK(one(root, 7).value == 1'700'000'000'000'000'000ull);
  CHECK(one(root, 8).value == 1'700'000'000'001'700'000ull);
  const auto attrs = kvs(root, 9);
  CHECK(one(attrs.at("gen_ai.operation.name"), 1).bytes == "chat");
  CHECK(one(attrs.at("gen_ai.usage.input_tokens"), 3).value == 100);  // int_value
  CHECK(one(attrs.at("frugal.cost_usd"), 4).as_double() == 0.000044);   // double_value
  CHECK(one(root, 16).wire == 5);  // flags, fixed32: sampled, parent locality known
  CHECK(one(root, 16).value == 0x101);
  CHECK(!has(root, 15));  // status unset

  const auto small = parse(span_fields[2].bytes);
  CHECK(one(small, 4).bytes == std::string(8, '\x11'));  // parent: the request span
  CHECK(one(small, 2).bytes == std::string("\0\0\0\0\0\0\0\xa1", 8));
  CHECK(one(small, 6).value == 3);  // SPAN_KIND_CLIENT
  const auto event = parse(one(small, 11).bytes);
  CHECK(one(event, 2).bytes == "upstream attempt");
  CHECK(one(kvs(event, 3).at("http.response.status_code"), 3).value == 200);
}

TEST_CASE("otlp encode: an error span has a status, a remote parent sets the flag bit") {
  router::RequestTrace t = escalated();
  t.parent_span_id = "00f067aa0ba902b7";
  t.end = router::ExchangeEnd::kUpstreamBroke;
  const auto req = parse(encode_traces({}, spans(t)));
  const auto ss = parse(one(parse(one(req, 1).bytes), 2).bytes);
  const auto root = parse(all(ss, 2).at(0).bytes);
  CHECK(one(root, 4).bytes == std::string("\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8));
  CHECK(one(root, 16).value == 0x301);
  const auto status = parse(one(root, 15).bytes);
  CHECK(one(status, 3).value == 2);  // STATUS_CODE_ERROR
  CHECK(one(status, 2).bytes == "upstream_broke");
}

TEST_CASE("otlp encode: ExportMetricsServiceRequest sums and histograms, cumulative") {
  MetricsAggregator agg(5);
  agg.add(escalated());
  const auto req = parse(encode_metrics(resource_attributes("svc"), agg.collect(9, {})));
  const auto rm = parse(one(req, 1).bytes);
  const auto sm = parse(one(rm, 2).bytes);
  bool saw_cost = false, saw_tokens = false;
  for (const Field& mf : all(sm, 2)) {
    const auto m = parse(mf.bytes);
    const std::string name = one(m, 1).bytes;
    if (name == "frugal.cost.usd") {
      saw_cost = true;
      CHECK(one(m, 3).bytes == "{USD}");
      const auto sum = parse(one(m, 7).bytes);
      CHECK(one(sum, 2).value == 2);  // AGGREGATION_TEMPORALITY_CUMULATIVE
      CHECK(one(sum, 3).value == 1);  // monotonic
      const auto dp = parse(one(sum, 1).bytes);
      CHECK(one(dp, 2).value == 5);
      CHECK(one(dp, 3).value == 9);
      CHECK(one(dp, 4).as_double() == 0.000044);
      CHECK(one(kvs(dp, 7).at("frugal.route"), 1).bytes == "qa");
    }
    if (name == "gen_ai.client.token.usage") {
      saw_tokens = true;
      const auto h = parse(one(m, 9).bytes);
      CHECK(one(h, 2).value == 2);
      for (const Field& dpf : all(h, 1)) {
        const auto dp = parse(dpf.bytes);
        const uint64_t count = one(dp, 4).value;
        const std::string& buckets = one(dp, 6).bytes;  // packed fixed64
        const std::string& bounds = one(dp, 7).bytes;   // packed double
        CHECK(buckets.size() == bounds.size() + 8);
        uint64_t total = 0;
        for (size_t i = 0; i < buckets.size(); i += 8) {
          uint64_t v = 0;
          for (size_t b = 0; b < 8; ++b) v |= static_cast<uint64_t>(static_cast<uint8_t>(buckets[i + b])) << (8 * b);
          total += v;
        }
        CHECK(total == count);
      }
    }
  }
  CHECK(saw_cost);
  CHECK(saw_tokens);
}
