//! The shell on the serial console (boot argument `shell`; the Pi 4 build's
//! default): a prompt, the line editor's echo, and the commands of
//! `brk_shell` carried out against the scheduler and the probes
//! (`commands.rs`). docs/shell.md lists the commands.
//!
//! How input reaches it: [`start`] has the console's UART raise its
//! interrupt when bytes arrive (aarch64: the PL011's receive interrupt at the
//! GIC; x86_64: COM1's IRQ 4 through the 8259 and the local APIC's LINT0),
//! and the exception dispatcher calls [`on_console_input`] for it. The shell
//! runs right there, in the interrupt handler: the UART interrupt is switched
//! on only once the tasks run, when the kernel takes interrupts only in user
//! mode and in the idle loop, so no lock is held (not the scheduler's, not
//! the console's) and each command may take the locks it needs. A command
//! such as `run` or `kill` changes the scheduler's state; the dispatcher's
//! `resume` then picks the thread to run, as after any interrupt.
//!
//! With the shell, the kernel does not power off when the last process ends
//! (`task::scheduler::Scheduler::stay_up`); `poweroff` does, with the run's
//! status.

mod commands;

use crate::{console, print, println};
use brk_shell::{Entered, LineEditor};
use spin::Mutex;

/// What the shell shows when it waits for a command.
pub const PROMPT: &str = "brk> ";

/// The line being typed and the history; `None` until [`start`].
static EDITOR: Mutex<Option<LineEditor>> = Mutex::new(None);

/// Listen to the console and show the first prompt. False, having said why
/// in one line, when the console cannot be read: the run then goes on as
/// without the shell.
pub fn start() -> bool {
    if let Err(why) = console::listen() {
        println!("shell: cannot read the console ({}): running as without `shell`", why);
        return false;
    }
    *EDITOR.lock() = Some(LineEditor::new());
    println!("shell: ready; `help` lists the commands, `poweroff` ends the run");
    print!("{}", PROMPT);
    true
}

/// The console's interrupt: take what was typed, echo it, and carry out
/// each line finished with Enter, then prompt again.
pub fn on_console_input() {
    for byte in console::take_received() {
        let entered = match EDITOR.lock().as_mut() {
            Some(editor) => editor.feed(byte, &mut |echo| print!("{}", echo)),
            None => return,
        };
        match entered {
            None => {}
            Some(Entered::TooLong) => {
                println!("shell: line longer than {} characters: ignored", brk_shell::MAX_LINE);
                print!("{}", PROMPT);
            }
            Some(Entered::Line(line)) => {
                commands::carry_out(&line);
                print!("{}", PROMPT);
            }
        }
    }
}
