#pragma once
// The policy used across the policy tests (and, verbatim, in docs/policies.md).
namespace frugal::policies::testing {

inline constexpr const char* kExamplePolicy = R"(
request_types:
  - name: classify
    match: { header: { x-frugal-request-type: classify } }
  - name: extract
    match: { any: [ { system_prompt_regex: "(?i)extract" }, { response_format: json_schema } ] }
  - name: support
    match:
      all:
        - { team: [support, cx] }
        - { not: { model: "gpt-4o*" } }
  - name: tagged
    match: { tag: nightly-batch }
  - name: long
    match: { prompt_tokens: { min: 20000 } }
  - name: chat
routes:
  classify:
    reference_model: gpt-4o
    cascade:
      - model: local/small-q4
        accept: { all: [ { mean_logprob: { min: -0.35 } }, { not_refusal: true } ] }
      - model: gpt-4o-mini
        accept: { min_logprob: { min: -2.0 } }
      - model: gpt-4o
    cache: { ttl: 1h }
  extract:
    reference_model: claude-sonnet-4-5
    cascade:
      - model: gpt-4o-mini
        accept: { all: [ { json_schema: true }, { margin: { min: 1.0 } } ] }
      - model: claude-sonnet-4-5
        accept: { json_parse: true }
  chat:
    reference_model: gpt-4o
    stream: first_tier
    cascade:
      - model: gpt-4o-mini
prices:
  gpt-4o:            { input: 2.50, cached_input: 1.25, output: 10.00 }
  gpt-4o-mini:       { input: 0.15, cached_input: 0.075, output: 0.60 }
  claude-sonnet-4-5: { input: 3.00, cached_input: 0.30, cache_write_5m: 3.75, cache_write_1h: 6.00, output: 15.00 }
  local/small-q4:    { gpu_hour: 2.10 }
budgets:
  - { scope: { team: search }, per: day, soft: 50.00, hard: 80.00 }
  - { scope: global, per: month, hard: 10000 }
)";

}  // namespace frugal::policies::testing
