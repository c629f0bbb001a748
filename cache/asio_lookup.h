#pragma once
// Asio adapter for ExactCache::lookup (header-only; target frugal_cache_asio).
//
//   LookupResult r = co_await async_lookup(cache, key, ex, asio::use_awaitable);
//
// The completion handler always runs on the handler's associated executor (for
// use_awaitable: the coroutine's), falling back to `ex` — never on the cache's read
// pool and never inline inside the initiating call, even for a memory hit. Outstanding
// work is tracked on that executor while the RocksDB read is pending, so
// io_context::run() does not return early. For the cheapest memory hit without a
// post, call cache.lookup_now(key) first and await only when it has no answer.
// The cache must outlive the operation.
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <memory>
#include <optional>
#include <utility>

#include "cache/exact_cache.h"

namespace frugal::cache {

template <class Executor, class CompletionToken>
auto async_lookup(ExactCache& cache, const CacheKey& key, const Executor& ex, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(LookupResult)>(
      [&cache, key, ex](auto handler) {
        using Handler = decltype(handler);
        auto tracked = boost::asio::prefer(boost::asio::get_associated_executor(handler, ex),
                                           boost::asio::execution::outstanding_work.tracked);
        using WorkExecutor = decltype(tracked);
        struct Op {
          Handler handler;
          std::optional<WorkExecutor> work;
        };
        // ExactCache takes a copyable std::function; the handler may be move-only.
        auto op = std::make_shared<Op>(Op{std::move(handler), std::move(tracked)});
        cache.lookup(key, [op](LookupResult r) {
          auto target = *op->work;
          boost::asio::post(target, [op, r = std::move(r)]() mutable {
            auto h = std::move(op->handler);
            op->work.reset();
            std::move(h)(std::move(r));
          });
        });
      },
      token);
}

}  // namespace frugal::cache
