// worker_pool: OS threads and green threads sharing one channel. Four ordinary std::threads (say,
// threads of a library you do not control) submit jobs into a weft channel; a pool of eight green
// threads does the work and sends results back; the main green thread adds them up. A send from
// an OS thread blocks that thread; a receive in a green thread parks only the green thread.
#include <weft/weft.hpp>

#include <cstdio>
#include <thread>
#include <vector>

int main() {
  constexpr int producers = 4, jobs_each = 1000, pool_size = 8;
  return weft::run([] {
    weft::chan<int> jobs(64);
    weft::chan<long> results(64);

    std::vector<std::thread> threads;  // plain OS threads, outside the runtime's workers
    for (int p = 0; p < producers; ++p)
      threads.emplace_back([jobs, p]() mutable {
        for (int i = 0; i < jobs_each; ++i) jobs.send(p * jobs_each + i);
      });

    weft::wait_group pool;
    pool.add(pool_size);
    for (int w = 0; w < pool_size; ++w)
      weft::go([jobs, results, &pool]() mutable {
        for (int job : jobs) results.send(static_cast<long>(job) * 2);  // the "work"
        pool.done();
      });

    weft::go([&] {  // once the producers are done, close the jobs; once the pool is, the results
      for (auto& t : threads) weft::blocking([&t] { t.join(); });  // join off the workers
      jobs.close();
      pool.wait();
      results.close();
    });

    long sum = 0, count = 0;
    for (long r : results) {
      sum += r;
      ++count;
    }
    constexpr long n = producers * jobs_each;
    std::printf("%ld jobs from %d OS threads done by %d green threads: sum=%ld (expected %ld)\n",
                count, producers, pool_size, sum, n * (n - 1));
    return sum == n * (n - 1) ? 0 : 1;
  });
}
