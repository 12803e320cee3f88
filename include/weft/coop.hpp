// Cooperative scheduling controls. Every weft operation that completes without blocking (a
// channel operation, a socket read or write, a lock, a spawn) spends one unit of the running
// green thread's budget (config::coop_budget, 128 by default); at zero it yields to the back of
// its worker's queue first. So a green thread whose operations never block cannot starve the
// others on its worker (Tokio's cooperative budget).
//
//   for (auto& item : huge_vector) {             // a CPU loop that never blocks
//     process(item);
//     weft::consume_budget();                    // lets the worker's other green threads run
//   }
#pragma once

namespace weft {

// Spends one unit of the budget, yielding first if it is spent (Tokio's consume_budget). Put it
// in a long CPU loop that makes no other weft call, so that it lets others run now and then
// without paying for a yield on every iteration. A no-op on a plain OS thread.
void consume_budget();

// While an unconstrained object lives, the calling green thread spends no budget: its operations
// never force a yield (Tokio's unconstrained). For a short burst that must not be cut, such as
// draining a channel into a batch; it may nest. Create and destroy it on the same green thread.
class unconstrained {
 public:
  unconstrained() noexcept;
  ~unconstrained();
  unconstrained(const unconstrained&) = delete;
  unconstrained& operator=(const unconstrained&) = delete;
};

}  // namespace weft
