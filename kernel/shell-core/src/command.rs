//! The shell's commands: what each line means ([`parse`]), and each
//! command's `help` ([`COMMANDS`]). A line is answered by exactly one
//! [`Parsed`]: nothing to do (an empty line), a [`Command`] for the kernel
//! to carry out, or one error line.

use crate::probe_spec::{parse_number, ProbeTarget};
use alloc::{format, string::String, vec::Vec};
use probe_core::{SimulatePolicy, XolPolicy};

/// One command of the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `help [COMMAND]`: every command, or one.
    Help(Option<&'static Help>),
    /// `run PROGRAM [ARGS]`: start a process, in the background.
    Run { program: String, args: String },
    /// `ps`: the processes and their threads.
    Ps,
    /// `kill PID`.
    Kill(u32),
    /// `probe add PROGRAM:SYMBOL[+OFF] [ret]`.
    ProbeAdd { target: ProbeTarget, return_probe: bool },
    /// `probe del ID`.
    ProbeDel(u32),
    /// `probe list`.
    ProbeList,
    /// `trace on|off [ID]`: the trace of every hit, or of one probe's.
    Trace { on: bool, probe: Option<u32> },
    /// `stats`: the counters.
    Stats,
    /// `xol [PID]`: the XOL page of one process, or of each.
    Xol(Option<u32>),
    /// `policy fresh|reuse`.
    Policy(XolPolicy),
    /// `simulate all|branches`.
    Simulate(SimulatePolicy),
    /// `tree PID`: each thread's breakpoint tree.
    Tree(u32),
    /// `mem`: memory in use and free.
    Mem,
    /// `poweroff`: end the run with its status.
    Poweroff,
}

/// What one line asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Nothing: an empty line (or only blanks).
    Empty,
    Command(Command),
    /// What is wrong with the line, in one line.
    Error(String),
}

/// One command's help: how to write it and what it does.
#[derive(Debug, PartialEq, Eq)]
pub struct Help {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[Help] = &[
    Help { name: "help", usage: "help [COMMAND]", summary: "list the commands, or say what one does" },
    Help {
        name: "run",
        usage: "run PROGRAM [ARGS]",
        summary: "start a packed program as a new process, in the background; the shell goes on",
    },
    Help { name: "ps", usage: "ps", summary: "list the processes: pid, program, threads, state, ticks" },
    Help { name: "kill", usage: "kill PID", summary: "end process PID (its probes go with it)" },
    Help {
        name: "probe",
        usage: "probe add PROGRAM:SYMBOL[+OFF] [ret] | probe del ID | probe list",
        summary: "add a probe (in the running processes of PROGRAM and every later one; `ret` also counts returns), \
                  delete one, or list them with hits, mode and slot",
    },
    Help {
        name: "trace",
        usage: "trace on|off [ID]",
        summary: "print every step of every probe hit, or of probe ID's hits only",
    },
    Help { name: "stats", usage: "stats", summary: "the probes' counters (hits, slot reuse, cache maintenance ...)" },
    Help {
        name: "xol",
        usage: "xol [PID]",
        summary: "the XOL page of PID (or of every process): each written slot, its instruction, who last used it",
    },
    Help {
        name: "policy",
        usage: "policy fresh|reuse",
        summary: "reuse: a probed instruction's XOL slot is written once and reused; fresh: written on every hit",
    },
    Help {
        name: "simulate",
        usage: "simulate all|branches",
        summary: "what probes registered from now on simulate: all it can, or only what cannot run out of line",
    },
    Help { name: "tree", usage: "tree PID", summary: "each thread's breakpoint tree: the probes it has hit" },
    Help { name: "mem", usage: "mem", summary: "memory: page frames and kernel heap in use and free" },
    Help { name: "poweroff", usage: "poweroff", summary: "end every process and power off with the run's status" },
];

/// The help of command `name`.
pub fn help_of(name: &str) -> Option<&'static Help> {
    COMMANDS.iter().find(|help| help.name == name)
}

/// What `line` asks. Never panics; an error is one line that says what is
/// wrong and, where it helps, how to write the command.
pub fn parse(line: &str) -> Parsed {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&name, rest)) = words.split_first() else { return Parsed::Empty };
    match command(name, rest) {
        Ok(command) => Parsed::Command(command),
        Err(why) => Parsed::Error(why),
    }
}

fn command(name: &str, rest: &[&str]) -> Result<Command, String> {
    let Some(help) = help_of(name) else {
        return Err(format!("unknown command '{}' (help lists the commands)", printable(name)));
    };
    let usage = || format!("usage: {}", help.usage);
    let none = |command: Command| if rest.is_empty() { Ok(command) } else { Err(usage()) };
    match (name, rest) {
        ("help", []) => Ok(Command::Help(None)),
        ("help", [topic]) => help_of(topic)
            .map(|help| Command::Help(Some(help)))
            .ok_or_else(|| format!("no command '{}' (help lists the commands)", printable(topic))),
        ("run", [program, args @ ..]) => Ok(Command::Run { program: String::from(*program), args: args.join(" ") }),
        ("kill", [pid]) => Ok(Command::Kill(id(pid, "PID")?)),
        ("probe", ["add", spec]) => Ok(Command::ProbeAdd { target: ProbeTarget::parse(spec)?, return_probe: false }),
        ("probe", ["add", spec, "ret"]) => {
            Ok(Command::ProbeAdd { target: ProbeTarget::parse(spec)?, return_probe: true })
        }
        ("probe", ["del", probe]) => Ok(Command::ProbeDel(id(probe, "ID")?)),
        ("probe", ["list"]) => Ok(Command::ProbeList),
        ("trace", [switch, probe @ ..]) if probe.len() <= 1 => {
            let on = match *switch {
                "on" => true,
                "off" => false,
                _ => return Err(usage()),
            };
            let probe = probe.first().map(|probe| id(probe, "ID")).transpose()?;
            Ok(Command::Trace { on, probe })
        }
        ("xol", []) => Ok(Command::Xol(None)),
        ("xol", [pid]) => Ok(Command::Xol(Some(id(pid, "PID")?))),
        ("policy", ["fresh"]) => Ok(Command::Policy(XolPolicy::Fresh)),
        ("policy", ["reuse"]) => Ok(Command::Policy(XolPolicy::Reuse)),
        ("simulate", ["all"]) => Ok(Command::Simulate(SimulatePolicy::All)),
        ("simulate", ["branches"]) => Ok(Command::Simulate(SimulatePolicy::Branches)),
        ("tree", [pid]) => Ok(Command::Tree(id(pid, "PID")?)),
        ("ps", _) => none(Command::Ps),
        ("stats", _) => none(Command::Stats),
        ("mem", _) => none(Command::Mem),
        ("poweroff", _) => none(Command::Poweroff),
        _ => Err(usage()),
    }
}

/// A process or probe number (`what` names it in the error).
fn id(text: &str, what: &str) -> Result<u32, String> {
    parse_number(text)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{} '{}' is not a number", what, printable(text)))
}

/// `text` as an error line may quote it: at most 32 characters, so an error
/// stays one short line whatever was typed.
fn printable(text: &str) -> &str {
    match text.char_indices().nth(32) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe_spec::ProbeLocation;
    use alloc::string::ToString;

    fn command(line: &str) -> Command {
        match parse(line) {
            Parsed::Command(command) => command,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        match parse(line) {
            Parsed::Error(why) => why,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(command("help"), Command::Help(None));
        assert_eq!(command("help kill").clone(), Command::Help(help_of("kill")));
        assert_eq!(command("run threads 8 2"), Command::Run { program: "threads".into(), args: "8 2".into() });
        assert_eq!(command("run hello"), Command::Run { program: "hello".into(), args: String::new() });
        assert_eq!(command("ps"), Command::Ps);
        assert_eq!(command("  kill   3 "), Command::Kill(3));
        assert_eq!(command("kill 0x10"), Command::Kill(16));
        let Command::ProbeAdd { target, return_probe } = command("probe add demo:fib+4 ret") else { panic!() };
        assert!(return_probe);
        assert_eq!(target.location, ProbeLocation::Symbol { name: "fib".to_string(), offset: 4 });
        assert_eq!(command("probe del 2"), Command::ProbeDel(2));
        assert_eq!(command("probe list"), Command::ProbeList);
        assert_eq!(command("trace on"), Command::Trace { on: true, probe: None });
        assert_eq!(command("trace off 3"), Command::Trace { on: false, probe: Some(3) });
        assert_eq!(command("stats"), Command::Stats);
        assert_eq!(command("xol"), Command::Xol(None));
        assert_eq!(command("xol 2"), Command::Xol(Some(2)));
        assert_eq!(command("policy fresh"), Command::Policy(XolPolicy::Fresh));
        assert_eq!(command("policy reuse"), Command::Policy(XolPolicy::Reuse));
        assert_eq!(command("simulate all"), Command::Simulate(SimulatePolicy::All));
        assert_eq!(command("simulate branches"), Command::Simulate(SimulatePolicy::Branches));
        assert_eq!(command("tree 1"), Command::Tree(1));
        assert_eq!(command("mem"), Command::Mem);
        assert_eq!(command("poweroff"), Command::Poweroff);
    }

    #[test]
    fn every_command_has_help_and_parses_its_name() {
        for help in COMMANDS {
            assert!(help.usage.starts_with(help.name), "{help:?}");
            assert_eq!(command(&alloc::format!("help {}", help.name)), Command::Help(Some(help)));
        }
    }

    #[test]
    fn blank_lines_are_empty() {
        assert_eq!(parse(""), Parsed::Empty);
        assert_eq!(parse(" \t "), Parsed::Empty);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(error("frobnicate"), "unknown command 'frobnicate' (help lists the commands)");
        assert_eq!(error("kill"), "usage: kill PID");
        assert_eq!(error("kill me"), "PID 'me' is not a number");
        assert_eq!(error("kill 99999999999"), "PID '99999999999' is not a number");
        assert_eq!(error("probe add demo"), "probe 'demo': expected PROGRAM:SYMBOL[+OFFSET] or PROGRAM:0xADDRESS");
        assert_eq!(
            error("probe add demo:fib back"),
            "usage: probe add PROGRAM:SYMBOL[+OFF] [ret] | probe del ID | probe list"
        );
        assert_eq!(error("probe"), "usage: probe add PROGRAM:SYMBOL[+OFF] [ret] | probe del ID | probe list");
        assert_eq!(error("trace maybe"), "usage: trace on|off [ID]");
        assert_eq!(error("trace on 1 2"), "usage: trace on|off [ID]");
        assert_eq!(error("policy sometimes"), "usage: policy fresh|reuse");
        assert_eq!(error("ps now"), "usage: ps");
        assert_eq!(error("run"), "usage: run PROGRAM [ARGS]");
        assert_eq!(error("help me"), "no command 'me' (help lists the commands)");
    }

    #[test]
    fn quoted_words_are_cut_short() {
        let long = "x".repeat(100);
        let why = error(&long);
        assert!(why.len() < 80, "{why}");
    }
}
