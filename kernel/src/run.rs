//! What the kernel does once its machine is up, on every architecture: read
//! the boot arguments, run the self-tests and any fault injection, set the
//! probes up, start the requested programs, start the shell if asked (then
//! the kernel stays up until its `poweroff`), and power off with the status
//! the run earned.

use crate::{
    board::Platform,
    bootargs,
    power::{self, ExitStatus},
    println, probe,
    selftest::{self, SelfTest},
    shell, task, time,
};

/// From the self-tests (`self_tests`, in the order the architecture's boot
/// order gives) to power-off. Never returns.
pub fn self_tests_and_tasks(platform: &Platform, self_tests: &[SelfTest]) -> ! {
    let args = bootargs::parse(&platform.bootargs);
    let failed = selftest::run_all(self_tests, platform);
    bootargs::run_injection(&args);
    if failed > 0 {
        power::exit(ExitStatus::SelfTestFailed);
    }

    probe::init(&args);
    if let Some(period) = args.tick_us {
        println!("timer:   tick every {} us from now on (tick-us)", period);
        time::set_tick_period_us(period);
    }
    let launched = task::launch_requested(&args, probe::scheduler_hooks());
    let shell = args.shell && shell::start();
    if shell {
        task::scheduler::with(|s| s.stay_up());
    }
    if launched.started > 0 || shell {
        // Ends in the scheduler's report, which counts what could not start too.
        crate::cores::open_scheduler();
        task::run();
    }
    probe::print_report();
    power::exit(ExitStatus::of_tasks(launched.failed_tests, launched.not_started))
}

/// A secondary core's life once its machine state is up and it has arrived
/// (`cores::arrive`): wait for the scheduler to open, then idle in it like
/// the boot core, taking threads as they become ready.
pub fn secondary_core() -> ! {
    crate::cores::wait_to_join_the_scheduler();
    task::run()
}
