//! External commands: every one xtask runs is printed first, as `+ <command line>`,
//! in a form you can paste into a shell from the workspace root.

use std::{
    io::{self, BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
};

use anyhow::{bail, Context, Result};

/// A command line with its environment additions, printable and runnable.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Self {
        Cmd { program: program.into(), args: Vec::new(), envs: Vec::new() }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The shell form: `KEY=value program arg ...`, quoted where a shell needs it.
    pub fn display(&self) -> String {
        let envs = self.envs.iter().map(|(k, v)| format!("{k}={}", shell_quote(v)));
        let words = std::iter::once(shell_quote(&self.program)).chain(self.args.iter().map(|a| shell_quote(a)));
        envs.chain(words).collect::<Vec<_>>().join(" ")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        command.envs(self.envs.iter().map(|(k, v)| (k, v)));
        command
    }

    fn announce(&self) {
        println!("+ {}", self.display());
        // Our own output and the child's share the terminal: keep them in order.
        let _ = io::stdout().flush();
    }

    /// Runs with inherited stdio and returns the exit status, whatever it is.
    pub fn status(&self) -> Result<ExitStatus> {
        self.announce();
        self.command().status().with_context(|| format!("could not start `{}`", self.program))
    }

    /// Replaces this process with the command; returns only if that failed.
    #[cfg(unix)]
    pub fn exec(&self) -> anyhow::Error {
        use std::os::unix::process::CommandExt;
        self.announce();
        let err = self.command().exec();
        anyhow::anyhow!("could not start `{}`: {err}", self.program)
    }

    /// Runs with inherited stdio; a non-zero exit is an error.
    pub fn run(&self) -> Result<()> {
        let status = self.status()?;
        if !status.success() {
            bail!("`{}` failed ({status})", self.display());
        }
        Ok(())
    }

    /// Runs and returns its stdout, with stderr inherited; a non-zero exit is an error.
    pub fn output(&self) -> Result<String> {
        self.announce();
        let out = self
            .command()
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("could not start `{}`", self.program))?;
        if !out.status.success() {
            bail!("`{}` failed ({})", self.display(), out.status);
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs with stderr inherited and stdout both copied to our stdout as it arrives
    /// and captured, so the caller can read what a test runner reported.
    pub fn tee_stdout(&self) -> Result<(ExitStatus, String)> {
        self.announce();
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{}`", self.program))?;
        let mut captured = String::new();
        let mut reader = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = Vec::new();
        let stdout = io::stdout();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let mut out = stdout.lock();
            out.write_all(&line)?;
            out.flush()?;
            captured.push_str(&String::from_utf8_lossy(&line));
        }
        Ok((child.wait()?, captured))
    }
}

/// Quotes `word` for a POSIX shell, leaving plain words alone.
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%^".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Finds `program` the way a shell would: a path if it contains a `/`, else on `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains(std::path::MAIN_SEPARATOR) || program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_unquoted() {
        assert_eq!(shell_quote("-M"), "-M");
        assert_eq!(shell_quote("virt,virtualization=on"), "virt,virtualization=on");
        assert_eq!(shell_quote("target/images/virt/kernel.img"), "target/images/virt/kernel.img");
    }

    #[test]
    fn words_a_shell_would_split_are_quoted() {
        assert_eq!(shell_quote("target remote :1234"), "'target remote :1234'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("a;b"), "'a;b'");
    }

    #[test]
    fn display_puts_the_environment_first() {
        let cmd = Cmd::new("cargo").args(["test", "-p", "qemu-tests"]).env("QEMU", "/usr/bin/q q");
        assert_eq!(cmd.display(), "QEMU='/usr/bin/q q' cargo test -p qemu-tests");
    }
}
