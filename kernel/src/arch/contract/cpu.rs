//! The contract's `Cpu` trait: the processor itself: interrupts on and off,
//! waiting, halting, the user thread pointer, and what the architecture calls
//! user mode.

/// The processor itself: interrupts on and off, waiting, halting, the user
/// thread pointer, and what the architecture calls user mode.
pub trait Cpu {
    /// What this architecture calls the mode user programs run in (`EL0`,
    /// `ring-3`), for the lines generic code prints (`boot: first EL0
    /// instruction at ...`).
    const USER_MODE: &'static str;

    /// Let interrupts in on this core.
    fn enable_interrupts();

    /// Keep interrupts out on this core (on the way down, or around a
    /// section the interrupt path must not enter).
    fn disable_interrupts();

    /// Sleep until an interrupt arrives (the idle loop, interrupts enabled);
    /// one already pending ends the wait at once, so no wake-up is lost.
    fn wait_for_interrupt();

    /// Stop this core for good.
    fn halt() -> !;

    /// The user thread pointer (a register user code may read and, on some
    /// architectures, write): part of a thread's state, saved when it is
    /// switched out.
    fn thread_pointer() -> u64;

    /// Load the user thread pointer of the thread that is switched in.
    fn set_thread_pointer(value: u64);

    /// A thread's floating-point and vector registers, kept while it is
    /// switched out (the kernel itself never touches them: it is built
    /// soft-float on both architectures).
    type FpState;

    /// The state a new thread starts with.
    fn new_fp_state() -> Self::FpState;

    /// Store this core's floating-point and vector registers in `state` (the
    /// thread that owns them is being switched out).
    fn save_fp_state(state: &mut Self::FpState);

    /// Load `state` into this core's registers (its thread is switched in).
    fn restore_fp_state(state: &Self::FpState);
}
