//! What the shell asks of the probes while processes run: add a probe to a
//! program (into its running processes at once, and into every later one),
//! delete one, list them, trace them, change the policies, and show the
//! counters, an XOL page and the threads' breakpoint trees. Each function
//! prints its answer; an answer that cannot be given is one line saying why.
//!
//! Called from the console's interrupt (`crate::shell`), with no lock held;
//! each takes the scheduler's lock itself, before any of this module's own
//! (the order `install_requested` takes them in, under `spawn_process`).

use super::{
    install, read_text, retire_and_restore, set_trace_all, treatment_name, Request, RequestOutcome, ANY_TRACED,
    FRESH_SLOTS, REGISTRY, REQUESTS, SIMULATE_BRANCHES_ONLY, TRACED, TRACE_ALL,
};
use crate::{
    arch::{Machine, Probes},
    bootargs::ProbeRequest,
    println,
    probe::thread_state::{slot_address, Probe},
    programs,
    task::{
        process::{Process, Thread},
        scheduler,
    },
};
use alloc::{format, string::String, sync::Arc, vec::Vec};
use core::sync::atomic::Ordering;
use probe_core::{registry::Treatment, ProbeId, SimulatePolicy, SlotIndex, XolPolicy};

/// `probe add`: plant `target` in every running process of its program now,
/// and in every process of it started from now on.
pub fn add(target: brk_shell::ProbeTarget, return_probe: bool) {
    if programs::find(&target.program).is_none() {
        println!("probe {}: no program '{}' is packed into this kernel", target.spec, target.program);
        return;
    }
    let request = ProbeRequest { spec: target.spec, program: target.program, location: target.location, return_probe };
    let mut asked = Request {
        request,
        from_shell: true,
        outcome: RequestOutcome::default(),
        planted: Vec::new(),
        withdrawn: false,
    };
    let program = asked.request.program.clone();
    let running = scheduler::with(|s| {
        let mut running = 0;
        for process in s.processes().filter(|process| process.name == program) {
            install(process, &mut asked);
            running += 1;
        }
        running
    });
    if running == 0 {
        println!(
            "probe {}: no process of {} runs now; every one started from now on gets it",
            asked.request.spec, asked.request.program
        );
    }
    crate::cores::lock_answering_stops(&REQUESTS).push(asked);
}

/// `probe del`: put the original instruction back and retire probe `id`;
/// a probe the shell or the boot arguments asked for no longer goes into
/// later processes either.
pub fn delete(id: u32) {
    let Some(probe) = REGISTRY.read().get(ProbeId(id)).cloned() else {
        println!("probe del: no live probe {} (probe list shows them)", id);
        return;
    };
    let pid = probe.space.0 as u32;
    let retired = scheduler::with(|s| match s.process(pid) {
        Some(process) => retire_and_restore(process, u64::from(id)).map_err(|error| String::from(error.name())),
        None => Err(format!("its process {} has ended", pid)),
    });
    if let Err(why) = retired {
        println!("probe del: probe {} could not be deleted: {}", id, why);
        return;
    }
    let mut withdrawn = None;
    for asked in
        crate::cores::lock_answering_stops(&REQUESTS).iter_mut().filter(|asked| asked.planted.contains(&probe.id))
    {
        asked.withdrawn = true;
        withdrawn = Some(asked.request.program.clone());
    }
    println!(
        "probe {} deleted: {} restored at {:#x} in pid {}{}{}",
        id,
        Machine::instruction_text(&probe.original),
        probe.vaddr,
        pid,
        if probe.is_quiescent() { "" } else { "; the hit in flight finishes its step first" },
        withdrawn.map_or(String::new(), |program| format!("; later processes of {} do not get it", program))
    );
}

/// `probe list`: every live probe with its hits, how a hit runs the
/// original instruction, and the XOL slots the threads remember for it; then
/// the shell's requests still waiting for a process.
pub fn list() {
    let probes: Vec<Arc<Probe>> = REGISTRY.read().iter().cloned().collect();
    println!("probes: {} live", probes.len());
    scheduler::with(|s| {
        for probe in &probes {
            let pid = probe.space.0 as u32;
            let slots = remembered_slots(s.threads_of(pid), probe.id);
            let slot = match (&probe.treatment, slots.as_slice()) {
                (Treatment::Simulate(_), _) => String::from("no slot (simulated)"),
                (Treatment::Step, []) => String::from("no slot remembered"),
                (Treatment::Step, slots) => {
                    format!(
                        "slot {}",
                        slots.iter().map(|slot| format!("{}", slot.index())).collect::<Vec<_>>().join(" ")
                    )
                }
            };
            println!(
                "  probe {} {}:{} ({:#x}) in pid {}, {}: {} hits, {} returns, {}, {}{}",
                probe.id.0,
                probe.program,
                probe.symbol,
                probe.vaddr,
                pid,
                probe.kind.as_str(),
                probe.hits(),
                probe.return_hits(),
                treatment_name(probe),
                slot,
                if traced(probe.id) { ", traced" } else { "" }
            );
        }
    });
    for asked in
        crate::cores::lock_answering_stops(&REQUESTS).iter().filter(|asked| asked.from_shell && !asked.withdrawn)
    {
        println!("  asked: {} in every new process of {}", asked.request.spec, asked.request.program);
    }
}

/// The slots the threads of one process remember for `probe`, each once.
fn remembered_slots<'a>(threads: impl Iterator<Item = &'a Thread>, probe: ProbeId) -> Vec<SlotIndex> {
    let mut slots: Vec<SlotIndex> = threads
        .flat_map(|thread| {
            thread
                .probes
                .lock()
                .tree
                .iter()
                .map(|(vaddr, probe, slot)| (vaddr, Arc::clone(probe), slot))
                .collect::<Vec<_>>()
        })
        .filter(|(_, remembered, _)| remembered.id == probe)
        .filter_map(|(_, _, slot)| slot)
        .collect();
    slots.sort_by_key(|slot| slot.index());
    slots.dedup();
    slots
}

fn traced(id: ProbeId) -> bool {
    TRACED.lock().iter().any(|&(traced, _, _)| traced == id)
}

/// `trace on|off [ID]`: every hit's steps, or probe `id`'s only.
pub fn trace(on: bool, id: Option<u32>) {
    let word = if on { "on" } else { "off" };
    let Some(id) = id else {
        set_trace_all(on);
        println!("trace: {} for every probe", word);
        return;
    };
    let Some(probe) = REGISTRY.read().get(ProbeId(id)).cloned() else {
        println!("trace: no live probe {} (probe list shows them)", id);
        return;
    };
    let mut traced = TRACED.lock();
    traced.retain(|&(traced, _, _)| traced != probe.id);
    if on {
        traced.push((probe.id, probe.space, probe.vaddr));
    }
    ANY_TRACED.store(!traced.is_empty(), Ordering::Relaxed);
    if traced.is_empty() {
        // No hit selects its trace any more: only the switch for every probe counts.
        set_trace_all(TRACE_ALL.load(Ordering::Relaxed));
    }
    println!("trace: {} for probe {} ({}:{})", word, id, probe.program, probe.symbol);
}

/// `policy fresh|reuse`.
pub fn set_xol_policy(policy: XolPolicy) {
    FRESH_SLOTS.store(policy == XolPolicy::Fresh, Ordering::Relaxed);
    println!(
        "policy: {}",
        match policy {
            XolPolicy::Fresh => "fresh: every hit that steps writes its XOL slot and maintains the caches",
            XolPolicy::Reuse => "reuse: a slot that already holds the instruction is used as it is",
        }
    );
}

/// `simulate all|branches`: for the probes registered from now on.
pub fn set_simulate_policy(policy: SimulatePolicy) {
    SIMULATE_BRANCHES_ONLY.store(policy == SimulatePolicy::Branches, Ordering::Relaxed);
    println!(
        "simulate: {} (probes registered from now on)",
        match policy {
            SimulatePolicy::All => "all it can, nop and the frame push included",
            SimulatePolicy::Branches => "only what cannot run out of line; the rest is stepped",
        }
    );
}

/// `stats`: the counters, and the options in force.
pub fn stats() {
    let options = super::options();
    println!("counters: {}", crate::probe::report::counters_line());
    println!(
        "options: xol-policy={} simulate={} trace={}",
        if options.fresh_slots { "fresh" } else { "reuse" },
        if options.simulate_branches_only { "branches" } else { "all" },
        if options.trace { "on" } else { "off" }
    );
}

/// `xol [PID]`: the XOL page of process `pid`, or of every process.
pub fn xol(pid: Option<u32>) {
    scheduler::with(|s| match pid {
        Some(pid) => match s.process(pid) {
            Some(process) => show_xol(process, s.threads_of(pid).collect()),
            None => println!("xol: no process {}", pid),
        },
        None => {
            let mut any = false;
            for process in s.processes() {
                show_xol(process, s.threads_of(process.pid).collect());
                any = true;
            }
            if !any {
                println!("xol: no process runs");
            }
        }
    });
}

/// One XOL page: each slot written so far, the instruction in it (read back
/// from the page and disassembled), and the threads that remember it.
fn show_xol(process: &Process, threads: Vec<&Thread>) {
    let slots = process.xol.slot_count();
    let written: Vec<SlotIndex> = (0..slots)
        .filter_map(SlotIndex::new)
        .filter(|&slot| process.xol.contents(slot) != probe_core::xol::SlotContent::NEVER_WRITTEN)
        .collect();
    println!(
        "xol: pid {} {}: page {:#x}, {} slots, {} written, policy {}",
        process.pid,
        process.title(),
        slot_address(SlotIndex::TRAMPOLINE),
        slots,
        written.len(),
        if FRESH_SLOTS.load(Ordering::Relaxed) { "fresh" } else { "reuse" }
    );
    for slot in written {
        let address = slot_address(slot);
        let text = read_text(&process.space, address);
        let instruction = match Machine::decode_instruction(&text) {
            Ok(insn) => format!("{}", Machine::instruction_text(&insn)),
            Err(why) => format!("({} bytes that do not decode: {})", text.len(), why),
        };
        let users: Vec<String> = threads
            .iter()
            .flat_map(|thread| {
                let probes = thread.probes.lock();
                probes
                    .tree
                    .iter()
                    .filter(move |(_, _, remembered)| *remembered == Some(slot))
                    .map(move |(_, probe, _)| format!("tid {} for probe {} {}", thread.tid, probe.id.0, probe.symbol))
                    .collect::<Vec<_>>()
            })
            .collect();
        let user = if slot == SlotIndex::TRAMPOLINE {
            String::from("the return-probe trampoline")
        } else if users.is_empty() {
            String::from("no thread remembers it")
        } else {
            format!("remembered by {}", users.join(", "))
        };
        let held = if process.xol.is_held(slot) { ", held now" } else { "" };
        println!("  slot {} {:#x}: {}{}; {}", slot.index(), address, instruction, held, user);
    }
}

/// `tree PID`: each thread's breakpoint tree, the probes it has hit.
pub fn tree(pid: u32) {
    scheduler::with(|s| {
        let Some(process) = s.process(pid) else {
            println!("tree: no process {}", pid);
            return;
        };
        println!("tree: pid {} {}", pid, process.title());
        for thread in s.threads_of(pid) {
            let probes = thread.probes.lock();
            let tree = &probes.tree;
            println!("  tid {}: {} breakpoint(s)", thread.tid, tree.len());
            for (vaddr, probe, slot) in tree.iter() {
                println!(
                    "    {:#x} probe {} {}:{}{}, {}",
                    vaddr,
                    probe.id.0,
                    probe.program,
                    probe.symbol,
                    if probe.is_retired() { " (retired)" } else { "" },
                    slot.map_or(String::from("no slot remembered"), |slot| format!("slot {}", slot.index()))
                );
            }
        }
    });
}
