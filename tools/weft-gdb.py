# gdb commands for weft programs, in a live process or a core file:
#   source tools/weft-gdb.py
#   weft threads        every started green thread: id, name, state, what it waits for
#   weft bt <id>        backtrace of any green thread: a parked or queued one from its saved
#                       context, a running one from the worker thread running it
import gdb
from gdb.unwinder import Unwinder, register_unwinder

# Boost.Context's jump_fcontext (x86-64 SysV) leaves, at the saved context pointer:
# +0x00 mxcsr/x87 cw, +0x08 r12, +0x10 r13, +0x18 r14, +0x20 r15, +0x28 rbx, +0x30 rbp,
# +0x38 return address; the stack pointer after the jump back is ctx + 0x40. weft calls it
# through weft_jump_fcontext (runtime/context_switch.cpp), so that return address is inside the
# thunk, whose own frame follows: 8 bytes of padding, then its caller's return address.
SAVED = [("r12", 0x08), ("r13", 0x10), ("r14", 0x18), ("r15", 0x20), ("rbx", 0x28), ("rbp", 0x30)]
WAIT_NAMES = ["running or runnable", "chan receive", "chan send", "select", "mutex",
              "condition variable", "wait_group", "sleep", "join", "IO read", "IO write",
              "nil channel (forever)", "blocking call", "scope"]


def _scheduler():
    active = gdb.parse_and_eval("'weft::detail::(anonymous namespace)::g_active'")
    ptr = active["_M_b"]["_M_p"]
    if int(ptr) == 0:
        raise gdb.GdbError("weft: no runtime is running")
    return ptr.dereference()


def _workers(sched):
    vec = sched["workers_"]["_M_impl"]
    worker_ptr = gdb.lookup_type("weft::detail::worker").pointer()
    start = vec["_M_start"].cast(worker_ptr.pointer())
    finish = vec["_M_finish"].cast(worker_ptr.pointer())
    count = int(finish - start)
    return [start[i] for i in range(count)]


def _green_threads():
    sched = _scheduler()
    workers = _workers(sched)
    running = {int(w["current"]): int(w["os_tid"]) for w in workers if int(w["current"]) != 0}
    # A green thread in its first slice is in no registry yet: its worker's `current` shows it.
    for w in workers:
        g = w["current"]
        if int(g) != 0 and int(g["home"]) == 0:
            yield g, running.get(int(g))
    for w in workers:
        g = w["registry"]
        while int(g) != 0:
            yield g, running.get(int(g))
            g = g["reg_next"]


def _is_task(g):
    """A weft::task: a record without a stack (its vtable says so)."""
    try:
        return bool(g["vtable"]["stackless"])
    except gdb.error:
        return False


def _describe(g, running):
    name = g["name"].string() if int(g["name"]) != 0 else ""
    kind = "task" if _is_task(g) else "green thread"
    label = "%s %d" % (kind, int(g["id"])) + (' "%s"' % name if name else "")
    if running:
        return label + " [running on LWP %d]" % running
    reason = int(g["waiting_for"]["_M_i"])
    state = WAIT_NAMES[reason] if reason < len(WAIT_NAMES) else "parked"
    return label + " [%s]" % state


class _FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


def _in_thunk(pc):
    """True if `pc` lies in weft_jump_fcontext (a minimal symbol: it has no debug info)."""
    try:
        symbol = gdb.execute("info symbol %d" % pc, to_string=True)
    except gdb.error:
        return False
    return symbol.startswith("weft_jump_fcontext ")


class _GreenThreadUnwinder(Unwinder):
    """While `context` is set, the selected frame #0 unwinds into that saved green-thread
    context instead of its real caller. Works on core files too, where registers cannot be
    written."""

    def __init__(self):
        super().__init__("weft-green-thread")
        self.context = None

    def __call__(self, pending_frame):
        if self.context is None or pending_frame.level() != 0:
            return None
        ctx = self.context
        long_t = gdb.lookup_type("long")
        at = lambda off: gdb.Value(ctx + off).cast(long_t.pointer()).dereference()
        info = pending_frame.create_unwind_info(
            _FrameId(pending_frame.read_register("rsp"), pending_frame.read_register("rip")))
        for reg, off in SAVED:
            info.add_saved_register(reg, at(off))
        pc, sp = at(0x38), ctx + 0x40
        if _in_thunk(int(pc)):
            pc, sp = at(0x48), ctx + 0x50  # step over the thunk's frame
        info.add_saved_register("rip", pc)
        info.add_saved_register("rsp", gdb.Value(sp).cast(long_t))
        return info


_UNWINDER = _GreenThreadUnwinder()
register_unwinder(None, _UNWINDER, replace=True)


class WeftPrefix(gdb.Command):
    """weft: commands for weft green threads (weft threads, weft bt ID)."""

    def __init__(self):
        super().__init__("weft", gdb.COMMAND_USER, prefix=True)


class WeftThreads(gdb.Command):
    """List every started green thread: id, name, state, what it waits for."""

    def __init__(self):
        super().__init__("weft threads", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        n = 0
        for g, running in _green_threads():
            gdb.write(_describe(g, running) + "\n")
            n += 1
        gdb.write("%d green thread(s)\n" % n)


class WeftBacktrace(gdb.Command):
    """Backtrace of one green thread (weft bt ID) from its saved context."""

    def __init__(self):
        super().__init__("weft bt", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        want = int(arg)
        for g, running in _green_threads():
            if int(g["id"]) != want:
                continue
            if running:
                gdb.write(_describe(g, running) + "\n")
                for t in gdb.selected_inferior().threads():
                    if t.ptid[1] == running:
                        previous = gdb.selected_thread()
                        t.switch()
                        try:
                            gdb.execute("bt", from_tty)
                        finally:
                            previous.switch()
                        return
                raise gdb.GdbError("weft: no thread with LWP %d" % running)
            if _is_task(g):
                raise gdb.GdbError("weft: %s is a task: it has no stack, only its coroutine's "
                                   "frame" % _describe(g, running))
            ctx = int(g["ctx"])
            if ctx == 0:
                raise gdb.GdbError("weft: green thread %d has not started" % want)
            gdb.write(_describe(g, running) + "\n")
            gdb.write("(frame #0 is the selected OS thread's; the green thread starts at #1)\n")
            _UNWINDER.context = ctx
            gdb.invalidate_cached_frames()
            try:
                gdb.execute("bt", from_tty)
            finally:
                _UNWINDER.context = None
                gdb.invalidate_cached_frames()
            return
        raise gdb.GdbError("weft: no started green thread with id %d" % want)


WeftPrefix()
WeftThreads()
WeftBacktrace()
