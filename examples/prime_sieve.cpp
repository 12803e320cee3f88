// prime_sieve: Go's concurrent prime sieve, line for line. A green thread generates 2, 3, 4, ...;
// each prime found adds a filter green thread to the chain that drops its multiples. Every
// number passes through a chain of unbuffered channels: a green thread per filter costs little.
//
//   prime_sieve [count]      (default 1000: prints the first ten and the last)
#include <weft/weft.hpp>

#include <cstdio>
#include <string>

namespace {

void generate(weft::chan<int> out) {
  for (int i = 2;; ++i) out.send(i);
}

void filter(weft::chan<int> in, weft::chan<int> out, int prime) {
  for (;;) {
    const int i = *in.recv();
    if (i % prime != 0) out.send(i);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int count = argc > 1 ? std::stoi(argv[1]) : 1000;
  return weft::run([count] {
    weft::chan<int> ch(0);  // unbuffered, as in Go
    weft::go([ch] { generate(ch); });
    std::string first;
    int prime = 0;
    for (int n = 1; n <= count; ++n) {
      prime = *ch.recv();
      if (n <= 10) first += std::to_string(prime) + " ";
      weft::chan<int> next(0);
      weft::go([ch, next, prime] { filter(ch, next, prime); });
      ch = next;
    }
    std::printf("first ten: %s\nprime number %d: %d\n", first.c_str(), count, prime);
    // Returning ends weft::run, which unwinds the generator and the filters still parked.
  });
}
