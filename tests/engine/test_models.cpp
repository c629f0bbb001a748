#include "test_models.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "backends/engine/format/gguf_writer.h"

namespace frugal::engine::testing {

namespace {
std::string temp_dir() {
  // Never destroyed: `cleanup` below (constructed first, so destroyed last) still needs it.
  static const std::string* dir = new std::string([] {
    auto d = std::filesystem::temp_directory_path() / ("frugal-engine-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }());
  return *dir;
}
struct Cleanup {
  ~Cleanup() {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir(), ec);
  }
} cleanup;
}  // namespace

std::string tiny_model_path(const TinySpec& s) {
  static std::mutex mu;
  static std::map<std::string, std::string> made;
  const std::string key = s.arch + "-" + type_name(s.type) + (s.tied ? "-tied" : "") + "-" +
                          std::to_string(s.n_embd) + "x" + std::to_string(s.n_layer) + "-h" +
                          std::to_string(s.n_head) + "-" + std::to_string(s.n_head_kv) + "-ff" +
                          std::to_string(s.n_ff) + "-v" + std::to_string(s.n_vocab) + "-s" +
                          std::to_string(s.seed);
  std::lock_guard lock(mu);
  auto it = made.find(key);
  if (it != made.end()) return it->second;
  ModelShape shape;
  shape.arch = s.arch;
  shape.n_layer = s.n_layer;
  shape.n_embd = s.n_embd;
  shape.n_head = s.n_head;
  shape.n_head_kv = s.n_head_kv;
  shape.n_ff = s.n_ff;
  shape.n_vocab = s.n_vocab;
  shape.tied_embeddings = s.tied;
  const std::string path = temp_dir() + "/" + key + ".gguf";
  auto r = make_random_model(shape, s.type, s.seed, path);
  if (!r.ok()) FAIL("make_random_model(" << key << "): " << r.error().message);
  made[key] = path;
  return path;
}

std::shared_ptr<const Model> tiny_model(const TinySpec& spec) {
  auto m = Model::load(tiny_model_path(spec));
  if (!m.ok()) FAIL("Model::load: " << m.error().message);
  return *m;
}

}  // namespace frugal::engine::testing
