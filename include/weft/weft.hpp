// weft: Go-style green threads for C++20. Include this one header.
#pragma once

#include "weft/blocking.hpp"
#include "weft/cancel.hpp"
#include "weft/chan.hpp"
#include "weft/condition_variable.hpp"
#include "weft/config.hpp"
#include "weft/coop.hpp"
#include "weft/join_handle.hpp"
#include "weft/local.hpp"
#include "weft/mutex.hpp"
#include "weft/net.hpp"
#include "weft/runtime.hpp"
#include "weft/scope.hpp"
#include "weft/select.hpp"
#include "weft/stats.hpp"
#include "weft/timer.hpp"
#include "weft/wait_group.hpp"
