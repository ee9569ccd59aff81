//! The kernels' module graph, and the host test that keeps it free of cycles
//! between subsystems (docs/modules.md says why and draws the graph).
//!
//! The graph is read from the source, not from the compiler: starting at a
//! crate's `main.rs`, every `mod name;` (with its `#[path]`, if any) is a
//! module and its file; every reference a file makes to another module of the
//! crate is an edge: `crate::a::b`, `super::x`, `self::x`, a `use` tree (with
//! `{...}`, `self`, `as` and `*`), and a name a `use` or `mod` brought into
//! scope followed by `::`. A path ends at the deepest module it names, through
//! `pub use` re-exports (`arch::debug` is `arch::selected::debug`). A path to
//! an exported macro (`crate::println`) is an edge to the module that defines
//! it. Comments and string literals are not code. Not seen: a macro used by
//! its bare name (`trace!`) and a name brought in by a glob `use`; both stay
//! inside one subsystem in this kernel.
//!
//! A cycle among the files of one subsystem (a top-level module: `probe`'s
//! machine half and arch-neutral half call each other) is that subsystem's own
//! business. A cycle that passes through two subsystems is a layering error,
//! and the test names it, edge by edge, with the line of each reference.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// The top-level modules that are architecture code: the architectures
/// themselves, the boards, and each architecture's boot order. Every other
/// module is generic and reaches the machine only through the contract
/// ([`Graph::past_the_contract`]).
const ARCHITECTURE_CODE: [&str; 3] = ["arch", "board", "start"];

/// A module's path from the crate root, e.g. `["task", "scheduler"]`; the root is `[]`.
type ModPath = Vec<String>;

/// One module of a crate: its files (more than one when `#[cfg]` picks
/// between alternatives) and what `pub use` re-exports from it.
#[derive(Default)]
struct Module {
    files: Vec<PathBuf>,
    /// `pub use x::y as z;` / `pub use x::y;`: name -> absolute path.
    reexports: BTreeMap<String, ModPath>,
    /// `pub use x::*;`: the modules whose names it re-exports.
    globs: Vec<ModPath>,
}

/// Where one module refers to another, for the report.
#[derive(Clone, Debug)]
struct Reference {
    file: PathBuf,
    line: usize,
}

/// A crate's modules and the references between them.
pub struct Graph {
    modules: BTreeMap<ModPath, Module>,
    /// `#[macro_export] macro_rules! name`: name -> defining module.
    macros: BTreeMap<String, ModPath>,
    edges: BTreeMap<ModPath, BTreeMap<ModPath, Reference>>,
}

/// Source text with comments removed; with `blank_strings`, string and
/// character literals' contents become spaces. Line breaks are kept, so line
/// numbers stay right.
fn strip(source: &str, blank_strings: bool) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == '"'
            || (c == 'r'
                && (next == Some('"') || next == Some('#'))
                && !ident_char(chars.get(i.wrapping_sub(1)).copied()))
        {
            // A string: plain ("..." with escapes) or raw (r"...", r#"..."#).
            let raw = c == 'r';
            let mut hashes = 0;
            if raw {
                i += 1;
                while chars.get(i) == Some(&'#') {
                    hashes += 1;
                    i += 1;
                }
                if chars.get(i) != Some(&'"') {
                    // `r#ident`, not a string.
                    out.push('r');
                    out.extend(std::iter::repeat_n('#', hashes));
                    continue;
                }
            }
            out.push('"');
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                if !raw && d == '\\' {
                    if !blank_strings {
                        out.push(d);
                        out.extend(chars.get(i + 1));
                    }
                    i += 2;
                    continue;
                }
                if d == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                out.push(if blank_strings && d != '\n' { ' ' } else { d });
                i += 1;
            }
            out.push('"');
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal (a lifetime has no closing quote); `'\''`
            // and `'\\'` end at the first quote after the escaped character.
            let from = if next == Some('\\') { i + 3 } else { i + 2 };
            let end = (from..chars.len()).find(|&k| chars[k] == '\'').unwrap_or(chars.len() - 1);
            out.push_str("' '");
            i = end + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Tokens: identifiers, `::`, and every other non-space character, each with its line.
fn tokens(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut line = 1;
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            i += 1;
            while ident_char(chars.get(i).copied()) {
                i += 1;
            }
            out.push((chars[start..i].iter().collect(), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(("::".into(), line));
            i += 2;
        } else {
            out.push((c.to_string(), line));
            i += 1;
        }
    }
    out
}

/// Whether a `cfg` predicate can hold when building for `target_arch`: the
/// architecture is known, everything else (a board feature) may be either, so
/// it and its negation both count as possibly true (a `not` over anything but
/// architectures is taken as possibly true). Both boards of one
/// architecture are then in its graph.
fn cfg_may_hold(predicate: &str, target_arch: &str) -> bool {
    let predicate = predicate.trim();
    let inner =
        |name: &str| predicate.strip_prefix(name).and_then(|r| r.strip_prefix('(')).and_then(|r| r.strip_suffix(')'));
    if let Some(list) = inner("all") {
        split_top_level(list).iter().all(|p| cfg_may_hold(p, target_arch))
    } else if let Some(list) = inner("any") {
        split_top_level(list).iter().any(|p| cfg_may_hold(p, target_arch))
    } else if let Some(negated) = inner("not") {
        // Exact only when the negated predicate names nothing but architectures.
        negated.contains("feature") || !cfg_may_hold(negated, target_arch)
    } else if let Some(arch) = predicate.strip_prefix("target_arch") {
        arch.split('"').nth(1) == Some(target_arch)
    } else {
        true
    }
}

/// The comma-separated items of a `cfg` list, not splitting inside parentheses.
fn split_top_level(list: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&list[start..]);
    items.into_iter().filter(|item| !item.trim().is_empty()).collect()
}

/// `mod name;` declarations of a file (not inline `mod name { ... }`) that
/// are compiled for `target_arch`, each with its `#[path = "..."]` (or the
/// `#[cfg_attr(<cfg>, path = "...")]` that holds for the target) if it has one.
fn declared_modules(code: &str, target_arch: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut path = None;
    let mut compiled = true;
    for line in code.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#[path") {
            path = rest.split('"').nth(1).map(String::from);
            continue;
        }
        if let Some(rest) = line.strip_prefix("#[cfg_attr(").and_then(|rest| rest.strip_suffix(")]")) {
            if let Some((predicate, attribute)) = rest.rsplit_once(", path = ") {
                if cfg_may_hold(predicate, target_arch) {
                    path = attribute.split('"').nth(1).map(String::from);
                }
            }
            continue;
        }
        if let Some(predicate) = line.strip_prefix("#[cfg(").and_then(|rest| rest.strip_suffix(")]")) {
            compiled &= cfg_may_hold(predicate, target_arch);
            continue;
        }
        if line.starts_with("#[") || line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "mod");
        let is_decl = at.is_some_and(|at| words[..at].iter().all(|w| w.starts_with("pub")));
        if let (true, Some(at)) = (is_decl, at) {
            if let Some(name) = words.get(at + 1).and_then(|w| w.strip_suffix(';')) {
                if compiled {
                    out.push((name.to_string(), path.take()));
                }
            }
        }
        path = None;
        compiled = true;
    }
    out
}

/// A path read from the code: its segments and where it is.
struct RawPath {
    segments: Vec<String>,
    line: usize,
    /// From a `use`: the name it brings into scope (`None` for a glob).
    binds: Option<String>,
    /// From a `pub use`.
    public: bool,
    glob: bool,
}

/// Read `a::b::{c, d::e as f, *}` from `tokens[*i..]` below `prefix`.
fn use_tree(tokens: &[(String, usize)], i: &mut usize, prefix: &[String], public: bool, out: &mut Vec<RawPath>) {
    let mut segments = prefix.to_vec();
    let line = tokens.get(*i).map_or(0, |t| t.1);
    loop {
        let Some((token, _)) = tokens.get(*i) else { return };
        match token.as_str() {
            "{" => {
                *i += 1;
                while tokens.get(*i).is_some_and(|t| t.0 != "}") {
                    use_tree(tokens, i, &segments, public, out);
                    if tokens.get(*i).is_some_and(|t| t.0 == ",") {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                out.push(RawPath { segments, line, binds: None, public, glob: true });
                return;
            }
            "self" if segments.len() == prefix.len() && !prefix.is_empty() => {
                *i += 1;
                let mut binds = prefix.last().cloned();
                if tokens.get(*i).is_some_and(|t| t.0 == "as") {
                    binds = tokens.get(*i + 1).map(|t| t.0.clone());
                    *i += 2;
                }
                out.push(RawPath { segments, line, binds, public, glob: false });
                return;
            }
            name if ident_char(name.trim_start_matches('$').chars().next()) => {
                segments.push(name.trim_start_matches('$').to_string());
                *i += 1;
                if tokens.get(*i).is_some_and(|t| t.0 == "::") {
                    *i += 1;
                    continue;
                }
                let binds = if tokens.get(*i).is_some_and(|t| t.0 == "as") {
                    *i += 2;
                    tokens.get(*i - 1).map(|t| t.0.clone())
                } else {
                    segments.last().cloned()
                };
                out.push(RawPath { segments, line, binds, public, glob: false });
                return;
            }
            _ => return,
        }
    }
}

/// Every `use` tree and every other path of a file.
fn paths(code: &str) -> Vec<RawPath> {
    let tokens = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        // `$crate` in a macro is `crate`.
        let token = tokens[i].0.trim_start_matches('$');
        let after_path = i > 0 && matches!(tokens[i - 1].0.as_str(), "::" | ".");
        if token == "use" && !after_path {
            let public = i > 0 && (tokens[i - 1].0 == "pub" || tokens[i - 1].0 == ")");
            i += 1;
            if tokens.get(i).is_some_and(|t| t.0 == "::") {
                i += 1;
            }
            use_tree(&tokens, &mut i, &[], public, &mut out);
        } else if ident_char(token.chars().next()) && !after_path && tokens.get(i + 1).is_some_and(|t| t.0 == "::") {
            let line = tokens[i].1;
            let mut segments = vec![token.to_string()];
            i += 2;
            while let Some((name, _)) = tokens.get(i).filter(|t| ident_char(t.0.chars().next())) {
                segments.push(name.clone());
                i += 1;
                if tokens.get(i).is_some_and(|t| t.0 == "::") {
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(RawPath { segments, line, binds: None, public: false, glob: false });
        } else {
            i += 1;
        }
    }
    out
}

impl Graph {
    /// Read the crate whose root file is `root` as it builds for
    /// `target_arch`, through `read` (the file system, or a table in the tests).
    pub fn read(root: &Path, target_arch: &str, read: &dyn Fn(&Path) -> Option<String>) -> Result<Graph, String> {
        let mut graph = Graph { modules: BTreeMap::new(), macros: BTreeMap::new(), edges: BTreeMap::new() };
        let mut sources: Vec<(ModPath, PathBuf, String)> = Vec::new();
        let mut pending = vec![(ModPath::new(), root.to_path_buf(), true)];
        while let Some((module, file, owns_dir)) = pending.pop() {
            let source =
                read(&file).ok_or_else(|| format!("{} (module `{}`) cannot be read", file.display(), name(&module)))?;
            let code = strip(&source, false);
            let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
            let children_dir = if owns_dir { dir.clone() } else { dir.join(file.file_stem().unwrap_or_default()) };
            for (child, path) in declared_modules(&code, target_arch) {
                let mut child_path = module.clone();
                child_path.push(child.clone());
                let (child_file, owns) = match path {
                    Some(path) => (dir.join(path), true),
                    None => {
                        let flat = children_dir.join(format!("{child}.rs"));
                        if read(&flat).is_some() {
                            (flat, false)
                        } else {
                            (children_dir.join(&child).join("mod.rs"), true)
                        }
                    }
                };
                pending.push((child_path, child_file, owns));
            }
            let mut lines = code.lines();
            while let Some(line) = lines.next() {
                if line.trim() == "#[macro_export]" {
                    let definition = lines.by_ref().map(str::trim).find(|l| !l.starts_with("#["));
                    if let Some(macro_name) = definition.and_then(|l| l.strip_prefix("macro_rules!")) {
                        let macro_name = macro_name.trim().trim_end_matches('{').trim();
                        graph.macros.insert(macro_name.to_string(), module.clone());
                    }
                }
            }
            graph.modules.entry(module.clone()).or_default().files.push(file.clone());
            sources.push((module, file, strip(&source, true)));
        }
        // Re-exports first, in file order, so that paths through them resolve.
        let mut all_paths = Vec::new();
        for (module, file, code) in &sources {
            let mut scope = initial_scope(module);
            for path in paths(code) {
                let absolute = graph.absolute(module, &path.segments, &scope);
                if let (Some(absolute), Some(binds)) = (&absolute, &path.binds) {
                    scope.insert(binds.clone(), absolute.clone());
                    // A `use` binds a name for the module and everything below
                    // it, public or not: `use firmware as devicetree;` at the
                    // root makes `crate::devicetree::...` work crate-wide.
                    graph
                        .modules
                        .get_mut(module)
                        .expect("read above")
                        .reexports
                        .insert(binds.clone(), absolute.clone());
                }
                if let (Some(absolute), true, true) = (&absolute, path.glob, path.public) {
                    graph.modules.get_mut(module).expect("read above").globs.push(absolute.clone());
                }
                all_paths.push((module.clone(), file.clone(), path.line, absolute));
            }
        }
        for (module, file, line, absolute) in all_paths {
            let Some(target) = absolute.and_then(|path| graph.resolve(&path)) else { continue };
            if target != module {
                graph.edges.entry(module).or_default().entry(target).or_insert(Reference { file, line });
            }
        }
        Ok(graph)
    }

    /// The absolute form of `segments` as written in `module` with `scope`,
    /// or `None` for a path outside the crate (`alloc::...`, a local type).
    fn absolute(&self, module: &ModPath, segments: &[String], scope: &BTreeMap<String, ModPath>) -> Option<ModPath> {
        let (first, rest) = segments.split_first()?;
        let mut base = if first == "super" {
            // `super::super::x`
            let ups = segments.iter().take_while(|s| *s == "super").count();
            let base = module.get(..module.len().checked_sub(ups)?)?.to_vec();
            return Some(base.into_iter().chain(segments[ups..].iter().cloned()).collect());
        } else if let Some(bound) = scope.get(first) {
            bound.clone()
        } else {
            let mut child = module.clone();
            child.push(first.clone());
            if !self.modules.contains_key(&child) {
                return None;
            }
            child
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The deepest module `path` names (through re-exports), or the macro's
    /// module; `None` for a crate-root item that is neither.
    fn resolve(&self, path: &[String]) -> Option<ModPath> {
        let mut current = ModPath::new();
        for (index, segment) in path.iter().enumerate() {
            let mut child = current.clone();
            child.push(segment.clone());
            if self.modules.contains_key(&child) {
                current = child;
                continue;
            }
            let module = &self.modules[&current];
            if let Some(target) = module.reexports.get(segment) {
                let rest: Vec<String> = path[index + 1..].to_vec();
                let through: ModPath = target.iter().cloned().chain(rest).collect();
                return self.resolve(&through);
            }
            if let Some(glob) = module.globs.iter().find(|glob| {
                let mut candidate = (*glob).clone();
                candidate.push(segment.clone());
                self.modules.contains_key(&candidate)
            }) {
                let through: ModPath = glob.iter().cloned().chain(path[index..].iter().cloned()).collect();
                return self.resolve(&through);
            }
            if current.is_empty() {
                return self.macros.get(segment).cloned();
            }
            break;
        }
        Some(current)
    }

    /// Cycles that pass through more than one top-level module, each as
    /// `a -> b -> a` with the reference behind every edge.
    pub fn cross_module_cycles(&self) -> Vec<String> {
        let mut reports = Vec::new();
        for component in self.strongly_connected() {
            let subsystems: BTreeSet<&str> =
                component.iter().map(|m| m.first().map_or("crate", String::as_str)).collect();
            if subsystems.len() < 2 {
                continue;
            }
            reports.push(self.describe_cycle(&component));
        }
        reports
    }
    /// One cycle through the first module of `component`, spelled out.
    fn describe_cycle(&self, component: &BTreeSet<ModPath>) -> String {
        let start = component.iter().next().expect("a component is never empty").clone();
        // Breadth-first inside the component, back to `start`.
        let mut came_from: BTreeMap<ModPath, ModPath> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        'search: while let Some(module) = queue.pop_front() {
            for next in self.edges.get(&module).into_iter().flat_map(|e| e.keys()).filter(|n| component.contains(*n)) {
                if came_from.contains_key(next) {
                    continue;
                }
                came_from.insert(next.clone(), module.clone());
                if *next == start {
                    break 'search;
                }
                queue.push_back(next.clone());
            }
        }
        let mut cycle = vec![start.clone()];
        let mut at = came_from[&start].clone();
        while at != start {
            cycle.push(at.clone());
            at = came_from[&at].clone();
        }
        cycle.push(start);
        cycle.reverse();
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|pair| {
                let reference = &self.edges[&pair[0]][&pair[1]];
                format!("  {} -> {} ({}:{})", name(&pair[0]), name(&pair[1]), reference.file.display(), reference.line)
            })
            .collect();
        let members: Vec<String> = component.iter().map(|m| name(m)).collect();
        format!(
            "cycle {}:\n{}\n  (all the modules of this knot: {})",
            cycle.iter().map(|m| name(m)).collect::<Vec<_>>().join(" -> "),
            steps.join("\n"),
            members.join(", ")
        )
    }

    /// Tarjan's strongly connected components of the edges.
    fn strongly_connected(&self) -> Vec<BTreeSet<ModPath>> {
        struct State<'a> {
            graph: &'a Graph,
            index: BTreeMap<&'a ModPath, usize>,
            low: BTreeMap<&'a ModPath, usize>,
            stack: Vec<&'a ModPath>,
            on_stack: BTreeSet<&'a ModPath>,
            components: Vec<BTreeSet<ModPath>>,
        }
        fn visit<'a>(state: &mut State<'a>, module: &'a ModPath) {
            let number = state.index.len();
            state.index.insert(module, number);
            state.low.insert(module, number);
            state.stack.push(module);
            state.on_stack.insert(module);
            for next in state.graph.edges.get(module).into_iter().flat_map(|e| e.keys()) {
                if !state.index.contains_key(next) {
                    visit(state, next);
                    let low = state.low[module].min(state.low[next]);
                    state.low.insert(module, low);
                } else if state.on_stack.contains(next) {
                    let low = state.low[module].min(state.index[next]);
                    state.low.insert(module, low);
                }
            }
            if state.low[module] == state.index[module] {
                let mut component = BTreeSet::new();
                while let Some(member) = state.stack.pop() {
                    state.on_stack.remove(member);
                    component.insert(member.clone());
                    if member == module {
                        break;
                    }
                }
                if component.len() > 1 {
                    state.components.push(component);
                }
            }
        }
        let mut state = State {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            components: Vec::new(),
        };
        for module in self.modules.keys() {
            if !state.index.contains_key(module) {
                visit(&mut state, module);
            }
        }
        state.components
    }

    /// Does `from` refer to `to` (module paths written `a::b`)?
    /// Where generic code names an architecture's own module instead of the
    /// contract (`crate::arch::{Machine, <trait>, ...}`): every edge from a
    /// module outside `ARCHITECTURE_CODE` into a module below `arch::<arch>`,
    /// with its file and line. The architecture's root module, where
    /// `Machine` is, may be named.
    pub fn past_the_contract(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (from, targets) in &self.edges {
            let generic = from.first().is_some_and(|top| !ARCHITECTURE_CODE.contains(&top.as_str()));
            for (to, at) in targets.iter().filter(|_| generic) {
                if to.len() > 2 && to[0] == "arch" && to[1] != "contract" {
                    out.push(format!("{} -> {} ({}:{})", name(from), name(to), at.file.display(), at.line));
                }
            }
        }
        out
    }

    pub fn has_edge(&self, from: &str, to: &str) -> bool {
        let split = |s: &str| -> ModPath { s.split("::").filter(|p| !p.is_empty()).map(String::from).collect() };
        self.edges.get(&split(from)).is_some_and(|targets| targets.contains_key(&split(to)))
    }
}

/// The names every file of `module` starts with (its child modules are
/// found by [`Graph::absolute`]; `super` is handled there too).
fn initial_scope(module: &ModPath) -> BTreeMap<String, ModPath> {
    BTreeMap::from([(String::from("crate"), ModPath::new()), (String::from("self"), module.clone())])
}

/// `a::b`, or `crate` for the root.
fn name(module: &[String]) -> String {
    if module.is_empty() {
        String::from("crate")
    } else {
        module.join("::")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel_graph(target_arch: &str) -> Graph {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/src/main.rs");
        Graph::read(&root, target_arch, &|path| std::fs::read_to_string(path).ok()).unwrap()
    }

    fn synthetic(files: &[(&str, &str)]) -> Graph {
        let files: BTreeMap<PathBuf, String> = files.iter().map(|(p, s)| (PathBuf::from(p), s.to_string())).collect();
        Graph::read(Path::new("src/main.rs"), "aarch64", &|path| files.get(path).cloned()).unwrap()
    }

    fn assert_acyclic(graph: &Graph) {
        let cycles = graph.cross_module_cycles();
        assert!(
            cycles.is_empty(),
            "the kernel's modules depend on each other in a circle (docs/modules.md):\n{}",
            cycles.join("\n")
        );
    }

    #[test]
    fn aarch64_kernel_modules_depend_one_way() {
        let graph = kernel_graph("aarch64");
        // The graph is really read: the edges docs/modules.md names are there.
        for (from, to) in [
            ("exception", "probe"),
            ("exception", "time"),
            ("exception", "task::scheduler"),
            ("probe", "task::scheduler"),
            ("probe::common", "task::scheduler"),
            ("task::process", "probe::thread_state"),
            ("task::launch", "bootargs"),
            ("run", "probe"),
            ("probe::thread_state", "arch"),
        ] {
            assert!(graph.has_edge(from, to), "no edge {from} -> {to}");
        }
        for (from, to) in [
            ("task::scheduler", "probe"),
            ("task::fault_report", "probe"),
            ("time", "task::scheduler"),
            ("bootargs", "task::process"),
            ("probe::thread_state", "probe"),
            ("arch::aarch64::exception", "exception"),
        ] {
            assert!(!graph.has_edge(from, to), "edge {from} -> {to} is back");
        }
        assert_acyclic(&graph);
    }

    #[test]
    fn generic_code_reaches_the_machine_only_through_the_contract() {
        for target_arch in ["aarch64", "x86_64"] {
            let graph = kernel_graph(target_arch);
            let past = graph.past_the_contract();
            assert!(
                past.is_empty(),
                "{target_arch}: generic code names an architecture's module:\n{}",
                past.join("\n")
            );
        }
    }

    #[test]
    fn naming_an_architectures_module_from_generic_code_is_found() {
        let graph = synthetic(&[
            ("src/main.rs", "mod arch;\nmod task;\nmod start;\n"),
            ("src/arch/mod.rs", "pub mod contract;\npub mod aarch64;\npub use aarch64::Machine;\n"),
            ("src/arch/contract.rs", "pub trait Cpu {}\n"),
            ("src/arch/aarch64/mod.rs", "pub mod cpu;\npub struct Machine;\n"),
            ("src/arch/aarch64/cpu.rs", "pub fn halt() {}\n"),
            (
                "src/task.rs",
                "use crate::arch::{contract::Cpu, Machine};\nfn f() {\n    crate::arch::aarch64::cpu::halt();\n}\n",
            ),
            ("src/start.rs", "use crate::arch::aarch64::cpu;\n"),
        ]);
        assert_eq!(graph.past_the_contract(), ["task -> arch::aarch64::cpu (src/task.rs:3)"]);
    }

    #[test]
    fn x86_64_kernel_modules_depend_one_way() {
        let graph = kernel_graph("x86_64");
        for (from, to) in
            [("exception", "probe"), ("task::process", "probe::thread_state"), ("probe::common", "task::scheduler")]
        {
            assert!(graph.has_edge(from, to), "no edge {from} -> {to}");
        }
        for (from, to) in [("task::scheduler", "probe"), ("time", "task::scheduler"), ("probe::thread_state", "probe")]
        {
            assert!(!graph.has_edge(from, to), "edge {from} -> {to} is back");
        }
        assert_acyclic(&graph);
    }

    #[test]
    fn each_target_reads_its_own_files() {
        let files = [
            ("src/main.rs", "#[cfg(target_arch = \"aarch64\")]\nmod tree;\n#[cfg_attr(target_arch = \"x86_64\", path = \"a_x86.rs\")]\nmod a;\nmod b;\n"),
            ("src/tree.rs", "use crate::b;\n"),
            ("src/a.rs", "use crate::b;\n"),
            ("src/a_x86.rs", "pub fn f() {}\n"),
            ("src/b.rs", "use crate::a;\n"),
        ];
        let files: BTreeMap<PathBuf, String> = files.iter().map(|(p, s)| (PathBuf::from(p), s.to_string())).collect();
        let read = |arch| Graph::read(Path::new("src/main.rs"), arch, &|path| files.get(path).cloned()).unwrap();
        let (aarch64, x86_64) = (read("aarch64"), read("x86_64"));
        assert!(aarch64.has_edge("tree", "b") && aarch64.has_edge("a", "b"));
        assert_eq!(aarch64.cross_module_cycles().len(), 1);
        assert!(!x86_64.has_edge("tree", "b") && !x86_64.has_edge("a", "b"));
        assert!(x86_64.cross_module_cycles().is_empty());
        assert!(cfg_may_hold("all(target_arch = \"aarch64\", not(feature = \"board-rpi4\"))", "aarch64"));
        assert!(!cfg_may_hold("not(any(target_arch = \"aarch64\", target_arch = \"x86_64\"))", "x86_64"));
    }

    #[test]
    fn a_cycle_between_two_modules_is_named() {
        let graph = synthetic(&[
            ("src/main.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "// crate::b in a comment is no edge\nuse crate::b::f;\n"),
            ("src/b.rs", "pub fn f() {\n    let s = \"crate::a\";\n    crate::a::g();\n}\n"),
        ]);
        let cycles = graph.cross_module_cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(cycles[0].starts_with("cycle a -> b -> a:"), "{}", cycles[0]);
        assert!(cycles[0].contains("a -> b (src/a.rs:2)"), "{}", cycles[0]);
        assert!(cycles[0].contains("b -> a (src/b.rs:3)"), "{}", cycles[0]);
    }

    #[test]
    fn a_cycle_through_a_submodule_and_use_trees_is_found() {
        // task::process -> probe::leaf -> probe (super) -> task::scheduler -> task
        // (super::super) ... written with grouped `use`, `self`, `as` and a
        // re-export, as the kernel writes them.
        let graph = synthetic(&[
            ("src/main.rs", "mod probe;\nmod task;\n"),
            ("src/probe/mod.rs", "pub mod leaf;\nuse crate::task::{self as tasks, scheduler::{Thread}};\n"),
            ("src/probe/leaf.rs", "pub struct State(super::Thing);\n"),
            ("src/task/mod.rs", "pub mod process;\nmod scheduler;\npub use scheduler::Thread;\n"),
            ("src/task/process.rs", "use crate::probe::leaf as state;\npub struct P(state::State);\n"),
            ("src/task/scheduler.rs", "pub struct Thread(super::process::P);\n"),
        ]);
        assert!(graph.has_edge("probe", "task"));
        assert!(graph.has_edge("probe", "task::scheduler"));
        assert!(graph.has_edge("task::process", "probe::leaf"));
        let cycles = graph.cross_module_cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(cycles[0].contains("task::process -> probe::leaf"), "{}", cycles[0]);
    }

    #[test]
    fn a_private_alias_at_the_root_is_followed() {
        let graph = synthetic(&[
            ("src/main.rs", "mod firmware;\nmod memory;\nuse firmware as devicetree;\n"),
            ("src/firmware.rs", "use crate::memory::PAGE_SIZE;\npub struct Platform;\n"),
            ("src/memory.rs", "pub const PAGE_SIZE: usize = 4096;\nfn init(_: &crate::devicetree::Platform) {}\n"),
        ]);
        assert!(graph.has_edge("memory", "firmware"), "crate::devicetree is firmware");
        assert_eq!(graph.cross_module_cycles().len(), 1);
    }

    #[test]
    fn a_cycle_inside_one_subsystem_is_its_own() {
        let graph = synthetic(&[
            ("src/main.rs", "mod probe;\nmod task;\n"),
            ("src/probe/mod.rs", "mod common;\nuse common::register;\nfn plant() {}\n"),
            ("src/probe/common.rs", "pub fn register() { super::plant(); crate::task::spawn(); }\n"),
            ("src/task.rs", "pub fn spawn() {}\n"),
        ]);
        assert!(graph.has_edge("probe", "probe::common") && graph.has_edge("probe::common", "probe"));
        assert!(graph.cross_module_cycles().is_empty());
    }
}
