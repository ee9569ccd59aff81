//! The argument string: what the kernel passed to `_start`, split into words.
//!
//! Whether the string starts with the program's own name depends on how the
//! program was started, so [`operands`] skips a leading copy of it: for the
//! program `threads`, both `"8"` and `"threads 8"` give the operands `["8"]`.

/// The whitespace-separated words of `args`, without a leading `program` name.
pub fn operands<'a>(args: &'a str, program: &str) -> impl Iterator<Item = &'a str> {
    let mut words = args.split_whitespace().peekable();
    if words.peek() == Some(&program) {
        words.next();
    }
    words
}
