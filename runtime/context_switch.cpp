// The one piece of assembly in weft: a thunk around Boost.Context's jump_fcontext that keeps the
// CPU's return stack buffer (RSB) in step with the real stacks. See context_switch.hpp.
#include "context_switch.hpp"

#if defined(__x86_64__) && defined(__ELF__)
// jump_fcontext leaves by `jmp *%r8` to the return address the other side saved, so the entry
// our `call` pushed on the RSB is never popped: without this, every return after a switch would
// be predicted one frame off. The other side lands at 1: with %r8 still holding that address
// (the jmp's target); it then runs one `ret` to 1: itself, which the stale entry predicts
// exactly (every side calls jump_fcontext from this one place), and returns to its caller with
// the RSB balanced. The padding keeps %rsp 16-byte aligned at the call, as the ABI asks.
asm(R"(
    .text
    .globl weft_jump_fcontext
    .hidden weft_jump_fcontext
    .type weft_jump_fcontext, @function
    .p2align 4
weft_jump_fcontext:
    .cfi_startproc
    sub $8, %rsp
    .cfi_adjust_cfa_offset 8
    call jump_fcontext@PLT
1:
    test %r8, %r8
    jz 2f
    xor %r8d, %r8d
    lea 1b(%rip), %rcx
    push %rcx
    ret
2:
    add $8, %rsp
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc
    .size weft_jump_fcontext, .-weft_jump_fcontext
)");
#endif
