// Traffic capture (gateway/capture.h, gateway/capture_writer.h): lines the replay log
// reader accepts, redaction, labels by feedback, and the writer's rotation and size cap.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "backends/replay/replay_log.h"
#include "gateway/capture.h"
#include "gateway/capture_writer.h"
#include "router/request_trace.h"

#include <simdjson.h>

using namespace frugal;
namespace fs = std::filesystem;

namespace {

router::RequestTrace two_tier_trace() {
  router::RequestTrace t;
  t.request_id = "req-1";
  t.wall_start_us = 1'700'000'000'000'000;
  t.request_type = "qa";
  t.team = "search";
  t.answer_model = "small";
  router::TierAttempt a;
  a.model = "cheap";
  a.status = router::TierStatus::kRejected;
  a.score = 0.2;
  a.usage.input_tokens = 10;
  a.usage.output_tokens = 2;
  a.cost = Money::from_picos(123);
  t.tiers.push_back(a);
  a.model = "small";
  a.status = router::TierStatus::kAccepted;
  a.score = 0.9;
  a.cost = Money::from_micros(7);
  t.tiers.push_back(a);
  return t;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(f, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("capture: a captured request is a replay-log line, with the answer and every tier tried") {
  const auto trace = two_tier_trace();

  const std::string plain = gateway::capture_line(trace, config::CaptureRedact::kNone,
                                                  R"({"model":"auto","messages":[{"role":"user","content":"hi"}]})", "Blue",
                                                  nullptr);
  auto r = backends::parse_replay_line(plain, 1);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->id == "req-1");
  CHECK(r->request_type == "qa");
  CHECK(r->team == "search");
  CHECK(r->answered_by == "small");
  CHECK(r->ts_us == 1'700'000'000'000'000);
  CHECK(r->request_json.find("\"content\":\"hi\"") != std::string::npos);
  REQUIRE(r->candidates.size() == 2);
  CHECK(r->candidate("small")->answer == "Blue");
  CHECK_FALSE(r->candidate("small")->correct.has_value());  // nobody labelled it yet
  CHECK(r->candidate("cheap")->answer.empty());               // a rejected tier's text is not kept
  CHECK(r->candidate("cheap")->cost_usd->picos() == 123);
  CHECK(r->candidate("small")->cost_usd->to_usd_string() == "0.000007");

  // Shadowed: the reference's answer labels the answer by agreement.
  gateway::ShadowOutcome s;
  s.model = "large";
  s.answer = "  blue ";
  s.usage.input_tokens = 10;
  s.cost = Money::from_micros(30);
  auto shadowed = backends::parse_replay_line(gateway::capture_line(trace, config::CaptureRedact::kNone, "", "Blue", &s), 1);
  REQUIRE(shadowed);
  CHECK(shadowed->candidate("small")->correct == true);
  CHECK(shadowed->candidate("large")->correct == true);
  CHECK(shadowed->candidate("large")->answer == "  blue ");
  s.answer = "green";
  shadowed = backends::parse_replay_line(gateway::capture_line(trace, config::CaptureRedact::kNone, "", "Blue", &s), 1);
  CHECK(shadowed->candidate("small")->correct == false);
}

TEST_CASE("capture: redaction hashes or drops prompt and answer text") {
  simdjson::dom::parser parser;
  auto req = parse_chat_body(parser, R"({"model":"m","messages":[{"role":"system","content":"secret sys"},{"role":"user","content":"my SSN is 1"}],"response_format":{"type":"json_object"}})");
  REQUIRE(req);
  const std::string hashed = gateway::capture_request_json(*req, config::CaptureRedact::kHash);
  CHECK(hashed.find("secret") == std::string::npos);
  CHECK(hashed.find("SSN") == std::string::npos);
  CHECK(hashed.find(gateway::redact_text("my SSN is 1", config::CaptureRedact::kHash)) != std::string::npos);
  CHECK(hashed.find(R"("response_format":{"type":"json_object"})") != std::string::npos);
  CHECK(gateway::redact_text("a", config::CaptureRedact::kHash) == gateway::redact_text("a", config::CaptureRedact::kHash));
  CHECK(gateway::redact_text("a", config::CaptureRedact::kHash) != gateway::redact_text("b", config::CaptureRedact::kHash));
  CHECK(gateway::redact_text("a", config::CaptureRedact::kHash).rfind("hash128:", 0) == 0);
  CHECK(gateway::capture_request_json(*req, config::CaptureRedact::kDrop).empty());

  const auto trace = two_tier_trace();
  const std::string dropped = gateway::capture_line(trace, config::CaptureRedact::kDrop, "", "my answer", nullptr);
  CHECK(dropped.find("my answer") == std::string::npos);
  CHECK(dropped.find("\"request\"") == std::string::npos);
  auto r = backends::parse_replay_line(dropped, 1);
  REQUIRE(r);
  CHECK(r->request_type == "qa");  // replay classifies it by its recorded type
  const std::string hashed_line = gateway::capture_line(trace, config::CaptureRedact::kHash, hashed, "my answer", nullptr);
  CHECK(hashed_line.find("my answer") == std::string::npos);
  CHECK(backends::parse_replay_line(hashed_line, 1)->candidate("small")->answer ==
        gateway::redact_text("my answer", config::CaptureRedact::kHash));
}

TEST_CASE("capture: feedback lines label the answering candidate, last label wins, unknown ids are counted") {
  const auto trace = two_tier_trace();
  std::istringstream in(gateway::capture_line(trace, config::CaptureRedact::kNone, "", "Blue", nullptr) + "\n" +
                        gateway::feedback_line("req-1", false, std::nullopt) + "\n" +
                        gateway::feedback_line("nobody", true, std::nullopt) + "\n" +
                        gateway::feedback_line("req-1", std::nullopt, 0.75) + "\n" +
                        R"({"id":"x","feedback":{"score":2}})" + "\n");
  const auto log = backends::read_replay_log(in);
  REQUIRE(log.records.size() == 1);
  CHECK(log.records[0].candidate("small")->correct == true);  // score 0.75 came last
  CHECK_FALSE(log.records[0].candidate("cheap")->correct.has_value());
  CHECK(log.feedback_applied == 2);
  CHECK(log.feedback_unmatched == 1);
  REQUIRE(log.errors.size() == 1);
  CHECK(log.errors[0] == "line 5: feedback.score: expected a number in [0, 1]");
}

TEST_CASE("capture: answers agree ignoring case, surrounding and repeated whitespace") {
  CHECK(gateway::answers_agree("Blue sky", "  blue\n  SKY "));
  CHECK_FALSE(gateway::answers_agree("blue", "blue."));
  CHECK(gateway::answers_agree("", " "));
}

TEST_CASE("capture writer: rotation keeps at most max_files files of at most max_file_bytes") {
  const fs::path dir = fs::temp_directory_path() / ("frugal-capture-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "sub" / "capture.jsonl").string();
  {
    gateway::CaptureWriter w(path, 1000, 3, 1000);
    for (int i = 0; i < 100; ++i) {
      std::string line = "{\"n\":" + std::to_string(i) + ",\"pad\":\"";
      line.append(80 - line.size(), 'x');
      line += "\"}";
      REQUIRE(w.write(line));
    }
    w.flush();
    CHECK(w.written() == 100);
    CHECK(w.rotations() > 0);
    CHECK(w.dropped() == 0);
  }
  CHECK(fs::exists(path));
  CHECK(fs::exists(path + ".1"));
  CHECK(fs::exists(path + ".2"));
  CHECK_FALSE(fs::exists(path + ".3"));
  for (const auto& p : {path, path + ".1", path + ".2"}) CHECK(fs::file_size(p) <= 1000);
  // The newest lines are in the live file, in order; the oldest were dropped by the cap.
  const auto live = lines_of(path);
  REQUIRE_FALSE(live.empty());
  CHECK(live.back().rfind("{\"n\":99,", 0) == 0);
  const auto oldest = lines_of(path + ".2");
  REQUIRE_FALSE(oldest.empty());
  CHECK(oldest.front().rfind("{\"n\":0,", 0) != 0);
  // A new writer appends to the live file (and rotates when it is full).
  {
    gateway::CaptureWriter w(path, 1000, 3, 10);
    REQUIRE(w.write("{\"n\":100}"));
    w.flush();
  }
  CHECK(lines_of(path).back() == "{\"n\":100}");
  fs::remove_all(dir);
}
