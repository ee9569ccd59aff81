//! Carrying out one shell line: parse it (`brk_shell::parse`) and do what it
//! says, printing the answer. Every line is answered: an empty line by the
//! next prompt alone, a bad one by one `shell: ...` line.

use crate::{
    bootargs::{Expectation, ProgramRequest},
    memory::{frames, heap, PAGE_SIZE},
    println, probe,
    task::{self, process::ThreadState, scheduler},
};
use alloc::string::String;
use brk_shell::{Command, Parsed, COMMANDS};

/// Carry out `line`.
pub fn carry_out(line: &str) {
    match brk_shell::parse(line) {
        Parsed::Empty => {}
        Parsed::Error(why) => println!("shell: {}", why),
        Parsed::Command(command) => run(command),
    }
}

fn run(command: Command) {
    match command {
        Command::Help(None) => {
            for help in COMMANDS {
                println!("  {:<58} {}", help.usage, help.summary);
            }
        }
        Command::Help(Some(help)) => println!("{}: {}", help.usage, help.summary),
        Command::Run { program, args } => {
            task::start(&ProgramRequest { name: program, args, expectation: Expectation::Nothing });
        }
        Command::Ps => ps(),
        Command::Kill(pid) => {
            if let Err(why) = scheduler::with(|s| s.kill(pid, String::from("killed from the shell"))) {
                println!("kill: {}", why);
            }
        }
        Command::ProbeAdd { target, return_probe } => probe::live::add(target, return_probe),
        Command::ProbeDel(id) => probe::live::delete(id),
        Command::ProbeList => probe::live::list(),
        Command::Trace { on, probe } => probe::live::trace(on, probe),
        Command::Stats => probe::live::stats(),
        Command::Xol(pid) => probe::live::xol(pid),
        Command::Policy(policy) => probe::live::set_xol_policy(policy),
        Command::Simulate(policy) => probe::live::set_simulate_policy(policy),
        Command::Tree(pid) => probe::live::tree(pid),
        Command::Mem => mem(),
        Command::Poweroff => scheduler::with(|s| s.power_off("the shell powered off")),
    }
}

/// `ps`: one line per process, and one per thread under it.
fn ps() {
    scheduler::with(|s| {
        let mut any = false;
        for process in s.processes() {
            any = true;
            println!(
                "  pid {} {}: {} live thread(s), {} tick(s), preempted {} time(s)",
                process.pid,
                process.title(),
                process.live_threads,
                process.ticks,
                process.preemptions
            );
            for thread in s.threads_of(process.pid) {
                let state = match thread.state {
                    ThreadState::Ready => String::from("ready"),
                    ThreadState::Running => String::from("running"),
                    ThreadState::Sleeping(_) => String::from("sleeping"),
                    ThreadState::Joining(tid) => alloc::format!("joining tid {}", tid),
                    ThreadState::Exited(value) => alloc::format!("exited ({}), not joined yet", value),
                };
                println!("    tid {}: {}", thread.tid, state);
            }
        }
        if !any {
            println!("ps: no process runs");
        }
    });
}

/// `mem`: page frames and kernel heap, in use and in all.
fn mem() {
    let (frames_in_use, frames_total) = frames::usage();
    let (heap_used, heap_free) = heap::usage();
    println!(
        "mem: page frames {} of {} in use ({} KiB free of {} KiB); kernel heap {} KiB of {} KiB in use",
        frames_in_use,
        frames_total,
        frames_total.saturating_sub(frames_in_use) * PAGE_SIZE / 1024,
        frames_total * PAGE_SIZE / 1024,
        heap_used / 1024,
        (heap_used + heap_free) / 1024
    );
}
