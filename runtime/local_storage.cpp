// Storage behind weft::local<T>: per green thread (or OS thread) a vector indexed by slot.
#include <atomic>
#include <vector>

#include "scheduler.hpp"
#include "weft/local.hpp"

namespace weft::detail {
namespace {

std::atomic<std::size_t> g_next_slot{0};

// OS threads: their own table, destroyed when the thread exits.
struct os_thread_locals {
  local_table table;
  ~os_thread_locals() { table.destroy_all(); }
};
thread_local os_thread_locals tls_locals;

local_table& table_of_caller() {
  if (green_thread* g = current_green()) {
    if (!g->locals) g->locals = new local_table;
    return *g->locals;
  }
  return tls_locals.table;
}

}  // namespace

void local_table::destroy_all() noexcept {
  // A destructor may use another weft::local: take entries out one at a time.
  for (std::size_t i = 0; i < entries.size(); ++i) {
    entry e = entries[i];
    entries[i] = entry{};
    if (e.value) e.destroy(e.value);
  }
  entries.clear();
}

std::size_t local_slot_allocate() noexcept {
  return g_next_slot.fetch_add(1, std::memory_order_relaxed);
}

void* local_get(std::size_t slot) noexcept {
  green_thread* g = current_green();
  const local_table* t = g ? g->locals : &tls_locals.table;
  return t && slot < t->entries.size() ? t->entries[slot].value : nullptr;
}

void local_set(std::size_t slot, void* value, void (*destroy)(void*)) {
  local_table& t = table_of_caller();
  if (slot >= t.entries.size()) t.entries.resize(slot + 1);
  t.entries[slot] = local_table::entry{value, destroy};
}

void destroy_locals(green_thread* g) noexcept {
  if (!g->locals) return;
  g->locals->destroy_all();
  delete g->locals;
  g->locals = nullptr;
}

}  // namespace weft::detail
