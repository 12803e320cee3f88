// weft: Go-style green threads for C++20. Include this one header, or the ones you use:
//
//   runtime.hpp       weft::run, go, spawn, yield, sleep_for: starting and running green threads
//   config.hpp        weft::config (workers, stack size, budget) and spawn_options
//   join_handle.hpp   the result of spawn: join(), cancel()
//   chan.hpp          Go's channels             select.hpp   Go's select
//   timer.hpp         after() and ticker: time as channels
//   wait_group.hpp    Go's sync.WaitGroup       mutex.hpp, condition_variable.hpp
//   scope.hpp         structured concurrency with deadlines
//   cancel.hpp        cancellation: weft::cancelled, cancel_shield, stop tokens
//   blocking.hpp      weft::blocking: a blocking call on a pool of OS threads
//   coop.hpp          the cooperative budget    local.hpp    green-thread-local storage
//   stats.hpp         stats(), dump(): what the runtime is doing
//   net.hpp           TCP, addresses, resolve   udp.hpp      UDP
//   unix_socket.hpp   Unix stream and datagram sockets
//   io.hpp            streams over pipes and terminals; fd_waiter for foreign descriptors
//   fs.hpp            files, through the blocking pool
//
//   int main() {
//     return weft::run([] {
//       weft::chan<int> ch(0);
//       weft::go([ch]() mutable { ch.send(42); });
//       return *ch.recv() == 42 ? 0 : 1;
//     });
//   }
#pragma once

#include "weft/blocking.hpp"
#include "weft/cancel.hpp"
#include "weft/chan.hpp"
#include "weft/condition_variable.hpp"
#include "weft/config.hpp"
#include "weft/coop.hpp"
#include "weft/fs.hpp"
#include "weft/io.hpp"
#include "weft/join_handle.hpp"
#include "weft/local.hpp"
#include "weft/mutex.hpp"
#include "weft/net.hpp"
#include "weft/runtime.hpp"
#include "weft/scope.hpp"
#include "weft/select.hpp"
#include "weft/stats.hpp"
#include "weft/task.hpp"
#include "weft/timer.hpp"
#include "weft/udp.hpp"
#include "weft/unix_socket.hpp"
#include "weft/wait_group.hpp"
